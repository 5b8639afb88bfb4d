//! FHIR R4 bulk-export NDJSON for one synthetic site, with clinical-note text.
//!
//! The same events as the OMOP rendering ([`super::omop`]), as FHIR resources, one per line:
//! - `Patient.ndjson`: `id` = the person id, `gender`, `birthDate` (the year only);
//! - `Encounter.ndjson`: one per visit (a patient's events on one day), `period.start`;
//! - `Condition.ndjson` (ICD-10-CM), `MedicationRequest.ndjson` (RxNorm),
//!   `Observation.ndjson` (LOINC): one resource per structured event, with a
//!   `subject` (`Patient/<id>`), an `encounter` (`Encounter/<id>`) and the event's code
//!   under its FHIR system URI ([`system_uri`]). Dates vary as real exports do: every
//!   fifth Condition has only a `recordedDate`, and every seventh Observation has no
//!   `effective[x]` at all, so a loader must take the date from its encounter;
//! - `DocumentReference.ndjson`: one clinical note per visit with note concepts, its
//!   plain text base64-encoded in `content[0].attachment.data`.
//!
//! The note text names each note concept of the visit by one of its dictionary terms
//! (the concept's name, e.g. `cluster 7 finding 1`, or its abbreviation `C7F1`, in varying
//! case) inside a short sentence, and adds a few *negated* mentions of other note concepts
//! (`No evidence of cluster 3 finding 0.`) and negated filler (`No acute distress.`). The
//! negated concepts are never events of that visit, so a tagger that ignores negation
//! finds concepts the ground truth does not have. Mentions are one per sentence, so a
//! negation never reaches into the next mention's sentence.
//!
//! The output is a deterministic function of the site: the wording and the negated
//! mentions come from a ChaCha20 generator seeded from the site number.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::omop::iso_date;
use super::{SiteData, System, Vocabulary};

/// FHIR system URI of ICD-10-CM.
pub const ICD10CM_URI: &str = "http://hl7.org/fhir/sid/icd-10-cm";
/// FHIR system URI of RxNorm.
pub const RXNORM_URI: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
/// FHIR system URI of LOINC.
pub const LOINC_URI: &str = "http://loinc.org";
/// System URI of UMLS concept ids (CUIs).
pub const UMLS_URI: &str = "http://www.nlm.nih.gov/research/umls";

/// The FHIR system URI of a synthetic coding system.
pub fn system_uri(system: System) -> &'static str {
    match system {
        System::Icd10cm => ICD10CM_URI,
        System::Rxnorm => RXNORM_URI,
        System::Loinc => LOINC_URI,
        System::Cui => UMLS_URI,
    }
}

/// Mixed into the site number to seed the note wording.
const NOTE_SEED: u64 = 0x4648_4952_4e4f_5445;
/// Probability that a note has negated mentions of other note concepts (one or two).
const NEGATED_NOTE_RATE: f64 = 0.6;
/// Probability that a concept is written as its abbreviation.
const ABBREVIATION_RATE: f64 = 0.2;

/// Sentences that state a concept (`{}` is the term). None holds a negation cue.
const POSITIVE: [&str; 6] = [
    "Patient reports {}.",
    "Assessment: {}.",
    "{} noted on examination.",
    "Findings consistent with {}.",
    "History of {}.",
    "Continues to have {}.",
];

/// Sentences that rule a concept out: the cue is within five tokens before the term.
const NEGATED: [&str; 7] = [
    "No evidence of {}.",
    "Denies {}.",
    "Negative for {}.",
    "Patient is without {}.",
    "Ruled out {}.",
    "Free of {}.",
    "No signs or symptoms of {}.",
];

/// Openings; the negated ones test that a negation ends with its sentence.
const OPENING: [&str; 4] = [
    "Progress note.",
    "Clinic visit.",
    "No acute distress.",
    "Patient denies pain.",
];

/// The site's resources as `(file name, NDJSON text)`, in a fixed order.
pub fn ndjson(vocab: &Vocabulary, site: &SiteData) -> Vec<(&'static str, String)> {
    let terms = note_terms(vocab);
    let notes: Vec<u32> = (0..vocab.concepts.len() as u32)
        .filter(|&i| vocab.concepts[i as usize].system == System::Cui)
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(
        NOTE_SEED ^ (site.site as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );

    let mut patient = String::new();
    for p in &site.persons {
        let gender = if p.gender == 'F' { "female" } else { "male" };
        let _ = writeln!(
            patient,
            r#"{{"resourceType":"Patient","id":"{}","gender":"{gender}","birthDate":"{}"}}"#,
            p.person_id, p.birth_year
        );
    }
    let mut encounter = String::new();
    let mut condition = String::new();
    let mut medication = String::new();
    let mut observation = String::new();
    let mut document = String::new();
    let mut ids = [0u64; 5];
    let mut visit_notes: Vec<u32> = Vec::new();
    let mut start = 0;
    while start < site.events.len() {
        let first = site.events[start];
        let end = start
            + site.events[start..]
                .iter()
                .take_while(|e| e.person_id == first.person_id && e.day == first.day)
                .count();
        let date = iso_date(first.day);
        let person = first.person_id;
        ids[0] += 1;
        let enc = ids[0];
        let _ = writeln!(
            encounter,
            r#"{{"resourceType":"Encounter","id":"e{enc}","status":"finished","class":{{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"}},"subject":{{"reference":"Patient/{person}"}},"period":{{"start":"{date}T09:00:00Z","end":"{date}T10:00:00Z"}}}}"#
        );
        let refs = format!(
            r#""subject":{{"reference":"Patient/{person}"}},"encounter":{{"reference":"Encounter/e{enc}"}}"#
        );
        visit_notes.clear();
        for e in &site.events[start..end] {
            let c = &vocab.concepts[e.concept as usize];
            let coding = format!(
                r#"{{"coding":[{{"system":"{}","code":"{}","display":"{}"}}]}}"#,
                system_uri(c.system),
                c.code,
                c.name
            );
            match c.system {
                System::Icd10cm => {
                    ids[1] += 1;
                    let date_field = if ids[1] % 5 == 0 {
                        format!(r#""recordedDate":"{date}""#)
                    } else {
                        format!(r#""onsetDateTime":"{date}","recordedDate":"{date}""#)
                    };
                    let _ = writeln!(
                        condition,
                        r#"{{"resourceType":"Condition","id":"c{}","code":{coding},{refs},{date_field}}}"#,
                        ids[1]
                    );
                }
                System::Rxnorm => {
                    ids[2] += 1;
                    let _ = writeln!(
                        medication,
                        r#"{{"resourceType":"MedicationRequest","id":"m{}","status":"completed","intent":"order","medicationCodeableConcept":{coding},{refs},"authoredOn":"{date}T10:15:00Z"}}"#,
                        ids[2]
                    );
                }
                System::Loinc => {
                    ids[3] += 1;
                    let effective = if ids[3] % 7 == 0 {
                        String::new()
                    } else {
                        format!(r#","effectiveDateTime":"{date}T08:30:00+01:00""#)
                    };
                    let _ = writeln!(
                        observation,
                        r#"{{"resourceType":"Observation","id":"o{}","status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}}]}}],"code":{coding},{refs}{effective}}}"#,
                        ids[3]
                    );
                }
                System::Cui => visit_notes.push(e.concept),
            }
        }
        if !visit_notes.is_empty() {
            ids[4] += 1;
            let (text, _) = note_text(&mut rng, &visit_notes, &notes, &terms);
            let _ = writeln!(
                document,
                r#"{{"resourceType":"DocumentReference","id":"d{}","status":"current","type":{{"coding":[{{"system":"http://loinc.org","code":"11506-3","display":"Progress note"}}]}},"subject":{{"reference":"Patient/{person}"}},"date":"{date}T12:00:00Z","content":[{{"attachment":{{"contentType":"text/plain","data":"{}"}}}}],"context":{{"encounter":[{{"reference":"Encounter/e{enc}"}}],"period":{{"start":"{date}T09:00:00Z"}}}}}}"#,
                ids[4],
                base64(text.as_bytes())
            );
        }
        start = end;
    }
    vec![
        ("Patient.ndjson", patient),
        ("Encounter.ndjson", encounter),
        ("Condition.ndjson", condition),
        ("MedicationRequest.ndjson", medication),
        ("Observation.ndjson", observation),
        ("DocumentReference.ndjson", document),
    ]
}

/// The dictionary terms of every note concept, by concept index, read back from
/// [`Vocabulary::dictionary_csv`] so the notes use exactly the terms a site's dictionary
/// holds (the name first, then the abbreviation).
fn note_terms(vocab: &Vocabulary) -> HashMap<u32, Vec<String>> {
    let by_code: HashMap<&str, u32> = vocab
        .concepts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.system == System::Cui)
        .map(|(i, c)| (c.code.as_str(), i as u32))
        .collect();
    let mut terms: HashMap<u32, Vec<String>> = HashMap::new();
    for line in vocab.dictionary_csv().lines().skip(1) {
        let mut fields = line.split(',');
        let (Some(term), Some(_), Some(code)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if let Some(&i) = by_code.get(code) {
            terms.entry(i).or_default().push(term.to_string());
        }
    }
    terms
}

/// The text of one note stating `concepts` (and, sometimes, negating others drawn from
/// `all_notes`), with the negated concepts it mentions.
fn note_text(
    rng: &mut ChaCha20Rng,
    concepts: &[u32],
    all_notes: &[u32],
    terms: &HashMap<u32, Vec<String>>,
) -> (String, Vec<u32>) {
    let term = |rng: &mut ChaCha20Rng, c: u32| -> String {
        let forms = &terms[&c];
        if forms.len() > 1 && rng.random::<f64>() < ABBREVIATION_RATE {
            forms[1].to_uppercase()
        } else {
            forms[0].clone()
        }
    };
    let mut sentences: Vec<String> = Vec::with_capacity(concepts.len() + 3);
    for &c in concepts {
        let template = POSITIVE[rng.random_range(0..POSITIVE.len())];
        let t = term(rng, c);
        sentences.push(fill(template, &t));
    }
    let mut negated = Vec::new();
    if rng.random::<f64>() < NEGATED_NOTE_RATE {
        let wanted = 1 + rng.random_range(0..2usize);
        let present: HashSet<u32> = concepts.iter().copied().collect();
        // Bounded attempts: a visit may mention nearly every note concept.
        for _ in 0..20 {
            if negated.len() == wanted {
                break;
            }
            let c = all_notes[rng.random_range(0..all_notes.len())];
            if present.contains(&c) || negated.contains(&c) {
                continue;
            }
            negated.push(c);
            let template = NEGATED[rng.random_range(0..NEGATED.len())];
            let t = term(rng, c);
            let at = rng.random_range(0..=sentences.len());
            sentences.insert(at, fill(template, &t));
        }
    }
    let mut text = String::from(OPENING[rng.random_range(0..OPENING.len())]);
    for s in sentences {
        text.push(if rng.random::<f64>() < 0.3 { '\n' } else { ' ' });
        text.push_str(&s);
    }
    text.push('\n');
    (text, negated)
}

/// `template` with `{}` replaced by `term`, capitalised when it starts the sentence.
fn fill(template: &str, term: &str) -> String {
    if let Some(rest) = template.strip_prefix("{}") {
        let mut chars = term.chars();
        let first: String = chars
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        format!("{first}{}{rest}", chars.as_str())
    } else {
        template.replacen("{}", term, 1)
    }
}

/// Standard base64 (RFC 4648, with padding), as FHIR `Attachment.data` requires.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{EhrConfig, Generator};
    use super::*;

    fn site() -> (Generator, SiteData) {
        let g = Generator::new(EhrConfig {
            seed: 4,
            ..EhrConfig::default()
        });
        let s = g.site(1, 150);
        (g, s)
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn deterministic_and_one_resource_per_structured_event() {
        let (g, s) = site();
        let files = ndjson(g.vocabulary(), &s);
        assert_eq!(files, ndjson(g.vocabulary(), &s));
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Patient.ndjson",
                "Encounter.ndjson",
                "Condition.ndjson",
                "MedicationRequest.ndjson",
                "Observation.ndjson",
                "DocumentReference.ndjson"
            ]
        );
        let lines = |name: &str| -> Vec<serde_json::Value> {
            let text = &files.iter().find(|(n, _)| *n == name).unwrap().1;
            text.lines()
                .map(|l| serde_json::from_str(l).expect("each line is JSON"))
                .collect()
        };
        assert_eq!(lines("Patient.ndjson").len(), 150);
        let count = |system: System| {
            s.events
                .iter()
                .filter(|e| g.vocabulary().concepts[e.concept as usize].system == system)
                .count()
        };
        assert_eq!(lines("Condition.ndjson").len(), count(System::Icd10cm));
        assert_eq!(
            lines("MedicationRequest.ndjson").len(),
            count(System::Rxnorm)
        );
        let obs = lines("Observation.ndjson");
        assert_eq!(obs.len(), count(System::Loinc));
        assert_eq!(obs[0]["code"]["coding"][0]["system"], LOINC_URI);
        assert!(obs.iter().any(|o| o.get("effectiveDateTime").is_none()));
        let docs = lines("DocumentReference.ndjson");
        assert!(!docs.is_empty());
        assert_eq!(
            docs[0]["content"][0]["attachment"]["contentType"],
            "text/plain"
        );
    }

    #[test]
    fn negated_mentions_name_other_concepts_than_the_note_states() {
        let (g, _) = site();
        let vocab = g.vocabulary();
        let terms = note_terms(vocab);
        let notes: Vec<u32> = terms.keys().copied().collect();
        assert!(terms.values().all(|t| t.len() == 2));
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let mut negated_notes = 0;
        for k in 0..200 {
            let concepts = [notes[k % notes.len()], notes[(k * 7 + 3) % notes.len()]];
            let (text, negated) = note_text(&mut rng, &concepts, &notes, &terms);
            for c in &concepts {
                let t = &terms[c];
                let lower = text.to_lowercase();
                assert!(
                    lower.contains(&t[0].to_lowercase()) || lower.contains(&t[1].to_lowercase()),
                    "{text}"
                );
            }
            for c in &negated {
                assert!(!concepts.contains(c), "{text}");
            }
            negated_notes += usize::from(!negated.is_empty());
        }
        assert!(negated_notes > 60, "{negated_notes} of 200 notes negate");
    }
}
