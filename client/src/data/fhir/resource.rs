//! The parts of FHIR R4 resources the adapter reads, as lightweight serde structs.
//!
//! One struct, [`Resource`], holds the union of the fields read from every resource type
//! (and a Bundle's `entry`); everything else is skipped by the parser without being
//! built. Every field is *tolerant*: a value of an unexpected JSON type (a string where an
//! object was expected, an object where a list was) reads as absent instead of failing,
//! so one odd field, or a resource type that uses a field name differently, never makes a
//! whole Bundle unreadable. Only broken JSON syntax is an error.
//!
//! Also here: reading the values inside — code systems ([`system_label`]), references
//! ([`reference_key`]), dates ([`first_day`]) and base64 attachments ([`decode_base64`]).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use silo_common::ehr::parse_day;

/// A JSON object read as `T`; any other JSON value reads as `None`.
#[derive(Debug)]
pub(super) struct Obj<T>(pub Option<T>);

/// A JSON array of objects read as `T`s; elements that are not objects are dropped, and a
/// value that is not an array reads as empty.
#[derive(Debug)]
pub(super) struct List<T>(pub Vec<T>);

/// A JSON string; any other JSON value reads as `None`.
#[derive(Debug, Default)]
pub(super) struct Str(pub Option<String>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl Str {
    /// The string, when present and not blank.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
}

impl<T> Obj<T> {
    /// The object, when present.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

/// Skips the rest of a sequence.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Skips the rest of a map.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Accepts every JSON scalar as "absent".
macro_rules! ignore_scalars {
    ($none:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Obj(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }

    ignore_scalars!(Obj(None));
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Obj(item)) = seq.next_element::<Obj<T>>()? {
            out.extend(item);
        }
        Ok(List(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| List(Vec::new()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(List(Vec::new()))
    }

    ignore_scalars!(List(Vec::new()));
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Str(Some(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Str(Some(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Str(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Str(None))
    }

    ignore_scalars!(Str(None));
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor)
    }
}

/// The fields read from any resource (R4 names). Which ones matter depends on
/// `resourceType`; see the adapter's module documentation.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Resource {
    pub resource_type: Str,
    pub id: Str,
    /// Bundle entries.
    pub entry: List<Entry>,
    pub subject: Obj<Reference>,
    /// The subject of resources that name it `patient` (lenient fallback).
    pub patient: Obj<Reference>,
    pub encounter: Obj<Reference>,
    /// DocumentReference `context` (`encounter[]`, `period`) or MedicationStatement
    /// `context` (a Reference).
    pub context: Obj<Context>,
    pub code: Obj<CodeableConcept>,
    pub medication_codeable_concept: Obj<CodeableConcept>,
    pub medication_reference: Obj<Reference>,
    pub reason_code: List<CodeableConcept>,
    pub onset_date_time: Str,
    pub onset_period: Obj<Period>,
    pub recorded_date: Str,
    pub authored_on: Str,
    pub effective_date_time: Str,
    pub effective_period: Obj<Period>,
    pub effective_instant: Str,
    pub date_asserted: Str,
    pub issued: Str,
    pub performed_date_time: Str,
    pub performed_period: Obj<Period>,
    pub period: Obj<Period>,
    pub date: Str,
    pub description: Str,
    pub content: List<Content>,
}

impl Resource {
    /// `Condition/abc` (or `Condition` without an id), for skip reasons.
    pub fn label(&self) -> String {
        let kind = self.resource_type.get().unwrap_or("resource");
        match self.id.get() {
            Some(id) => format!("{kind}/{id}"),
            None => format!("{kind} without id"),
        }
    }
}

/// One Bundle entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Entry {
    pub full_url: Str,
    pub resource: Obj<Resource>,
}

/// A FHIR Reference (only its literal `reference`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Reference {
    pub reference: Str,
}

/// `DocumentReference.context` and `MedicationStatement.context` in one shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Context {
    pub reference: Str,
    pub encounter: List<Reference>,
    pub period: Obj<Period>,
}

/// A CodeableConcept (its codings).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CodeableConcept {
    pub coding: List<Coding>,
}

/// One Coding.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Coding {
    pub system: Str,
    pub code: Str,
}

/// A Period (its start).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Period {
    pub start: Str,
}

/// One `DocumentReference.content`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Content {
    pub attachment: Obj<Attachment>,
}

/// An Attachment: inline data and its MIME type (`url` is not followed).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Attachment {
    pub content_type: Str,
    pub data: Str,
}

/// Short labels of well-known code systems, by FHIR system URI or HL7 OID.
const SYSTEMS: [(&str, &str); 18] = [
    ("http://hl7.org/fhir/sid/icd-10-cm", "ICD10CM"),
    ("urn:oid:2.16.840.1.113883.6.90", "ICD10CM"),
    ("http://hl7.org/fhir/sid/icd-10", "ICD10"),
    ("urn:oid:2.16.840.1.113883.6.3", "ICD10"),
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "RXNORM"),
    ("urn:oid:2.16.840.1.113883.6.88", "RXNORM"),
    ("http://loinc.org", "LOINC"),
    ("urn:oid:2.16.840.1.113883.6.1", "LOINC"),
    ("http://snomed.info/sct", "SNOMED"),
    ("urn:oid:2.16.840.1.113883.6.96", "SNOMED"),
    ("http://www.ama-assn.org/go/cpt", "CPT"),
    ("urn:oid:2.16.840.1.113883.6.12", "CPT"),
    ("http://hl7.org/fhir/sid/ndc", "NDC"),
    ("urn:oid:2.16.840.1.113883.6.69", "NDC"),
    ("http://www.nlm.nih.gov/research/umls", "CUI"),
    ("urn:oid:2.16.840.1.113883.6.86", "CUI"),
    ("http://hl7.org/fhir/sid/cvx", "CVX"),
    ("urn:oid:2.16.840.1.113883.12.292", "CVX"),
];

/// The concept system of a FHIR coding system: the short label of a well-known URI or OID
/// (`http://loinc.org` → `LOINC`; see the adapter's module documentation), a short label
/// given as such in any case (`RxNorm` → `RXNORM`), and any other system verbatim.
pub fn system_label(system: &str) -> &str {
    let trimmed = system.trim().trim_end_matches('/');
    for (uri, label) in SYSTEMS {
        if trimmed == uri || trimmed.eq_ignore_ascii_case(label) {
            return label;
        }
    }
    system.trim()
}

/// A literal reference reduced to a lookup key: `Type/id` for relative and absolute URLs
/// (a `/_history/n` suffix dropped), `urn:uuid:…`, `urn:oid:…` and `#contained` as given.
pub fn reference_key(reference: &str) -> &str {
    let r = reference.trim();
    if r.starts_with("urn:") || r.starts_with('#') {
        return r;
    }
    let r = match r.find("/_history/") {
        Some(at) => &r[..at],
        None => r,
    };
    let r = r.trim_end_matches('/');
    // The last two path segments: `Type/id`.
    match r.rfind('/') {
        Some(last) => match r[..last].rfind('/') {
            Some(prev) => &r[prev + 1..],
            None => r,
        },
        None => r,
    }
}

/// The day of the first candidate that is a full date, or why there is none.
pub(super) fn first_day(candidates: &[(&str, Option<&str>)]) -> Result<i32, String> {
    let mut problem = None;
    for &(name, value) in candidates {
        let Some(v) = value else { continue };
        if let Some(day) = parse_day(v) {
            return Ok(day);
        }
        if problem.is_none() {
            problem = Some(if is_partial_date(v) {
                format!("{name} {v:?} is a partial date (no day)")
            } else {
                format!("{name} {v:?} is not a date")
            });
        }
    }
    Err(problem.unwrap_or_else(|| {
        let names: Vec<&str> = candidates.iter().map(|(n, _)| *n).collect();
        match names.split_last() {
            Some((last, [])) => format!("no {last}"),
            Some((last, rest)) => format!("no {} or {last}", rest.join(", ")),
            None => "no date".into(),
        }
    }))
}

/// FHIR's reduced-precision dates: `YYYY` or `YYYY-MM`.
fn is_partial_date(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        4 => digits(b),
        7 => digits(&b[..4]) && b[4] == b'-' && digits(&b[5..]),
        _ => false,
    }
}

/// Decodes base64 (standard or URL-safe alphabet, padding optional, whitespace ignored);
/// `None` when it is not base64.
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padding = false;
    for &b in text.as_bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if padding {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover character carries fewer than 8 bits: not base64.
    (bits < 6).then_some(out)
}
