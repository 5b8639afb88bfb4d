//! Dictionary tagging of note text: which concepts a clinical note mentions, and which of
//! those mentions are negated.
//!
//! The dictionary is a CSV `term,concept_system,concept_code` (header required, other
//! columns ignored). Text and terms are cut into tokens the same way — maximal runs of
//! letters and digits, lower-cased — so matching is case-insensitive and only at word
//! boundaries (`cough` does not match inside `coughing`; `C7F1` matches `c7f1`). At each
//! token the longest term starting there wins, and scanning resumes after it; a term
//! naming several concepts mentions all of them.
//!
//! Negation follows NegEx (Chapman et al., J Biomed Inform 2001) in its simplest form: a
//! mention is negated when a cue — `no`, `not`, `denies`, `denied`, `without`,
//! `negative for`, `ruled out`, `rule out`, `free of`, `absence of` — ends within the
//! [`NEGATION_WINDOW`] tokens before it, in the same sentence, with no scope terminator
//! (`but`, `however`, `although`) in between. Sentences end at `.`, `;`, `:`, `!`, `?` and
//! line breaks. Post-posed cues (`… was ruled out`) and pseudo-negations (`not only`) are
//! not modelled. A term may span a line break (wrapped text).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::super::ehr::{EhrError, FileReport};
use super::resource::system_label;

/// How many tokens before a mention a negation cue reaches.
pub const NEGATION_WINDOW: usize = 5;

/// One-token negation cues.
const CUES: [&str; 5] = ["no", "not", "denies", "denied", "without"];
/// Two-token negation cues.
const CUE_PAIRS: [(&str, &str); 5] = [
    ("negative", "for"),
    ("ruled", "out"),
    ("rule", "out"),
    ("free", "of"),
    ("absence", "of"),
];
/// Words that end a negation's scope within a sentence.
const TERMINATORS: [&str; 3] = ["but", "however", "although"];

/// The columns a dictionary must have.
const COLUMNS: [&str; 3] = ["term", "concept_system", "concept_code"];

/// A term after its first token, and the concepts it names.
#[derive(Debug)]
struct Term {
    rest: Box<[Box<str>]>,
    concepts: Vec<u32>,
}

/// The term dictionary, indexed for longest-match lookup by first token.
#[derive(Debug, Default)]
pub struct Dictionary {
    /// `(system, code)` of each concept a term names.
    concepts: Vec<(String, String)>,
    index: HashMap<(String, String), u32>,
    /// Terms by first token, longest first.
    terms: HashMap<Box<str>, Vec<Term>>,
    /// Number of distinct terms.
    len: usize,
}

/// One dictionary term found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention {
    /// Byte range of the matched words in the text.
    pub span: Range<usize>,
    /// The concepts the term names (indices for [`Dictionary::concept`]).
    pub concepts: Vec<u32>,
    /// Whether a negation cue governs it.
    pub negated: bool,
}

/// A token: its lower-cased form (a range of the scratch buffer), where it is in the
/// text, and its sentence.
#[derive(Clone, Debug)]
struct Token {
    lower: Range<usize>,
    span: Range<usize>,
    sentence: u32,
}

/// Cuts `text` into tokens, lower-casing into `buf`.
fn tokenize(text: &str, buf: &mut String, tokens: &mut Vec<Token>) {
    buf.clear();
    tokens.clear();
    let mut sentence = 0u32;
    let mut current: Option<(usize, usize)> = None; // (start in buf, start in text)
    for (at, ch) in text.char_indices() {
        if ch.is_alphanumeric() {
            if current.is_none() {
                current = Some((buf.len(), at));
            }
            if ch.is_ascii() {
                buf.push(ch.to_ascii_lowercase());
            } else {
                buf.extend(ch.to_lowercase());
            }
            continue;
        }
        if let Some((lower, start)) = current.take() {
            tokens.push(Token {
                lower: lower..buf.len(),
                span: start..at,
                sentence,
            });
        }
        if matches!(ch, '.' | ';' | ':' | '!' | '?' | '\n' | '\r') {
            sentence += 1;
        }
    }
    if let Some((lower, start)) = current {
        tokens.push(Token {
            lower: lower..buf.len(),
            span: start..text.len(),
            sentence,
        });
    }
}

impl Dictionary {
    /// Reads a dictionary CSV. Rows without a term (one with no letter or digit), a system
    /// or a code are skipped and reported in the returned [`FileReport`]; a file that
    /// cannot be read, is empty or lacks a column is an error.
    pub fn read(path: &Path) -> Result<(Dictionary, FileReport), EhrError> {
        let file = std::fs::File::open(path).map_err(|source| EhrError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let format = |line: Option<u64>, message: String| EhrError::Format {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(std::io::BufReader::new(file));
        let header = reader.byte_headers().map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(source) => EhrError::Io {
                path: path.to_path_buf(),
                source,
            },
            other => format(Some(1), format!("not CSV: {other:?}")),
        })?;
        let header: Vec<String> = header
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(format(
                None,
                "empty file; expected a header row term,concept_system,concept_code".into(),
            ));
        }
        let mut columns = [0usize; 3];
        for (slot, name) in columns.iter_mut().zip(COLUMNS) {
            *slot = header.iter().position(|h| h == name).ok_or_else(|| {
                format(
                    Some(1),
                    format!(
                        "no column {name:?}; expected a header term,concept_system,concept_code, found: {}",
                        header.join(",")
                    ),
                )
            })?;
        }
        let mut dictionary = Dictionary::default();
        let mut report = FileReport::new(path);
        let mut record = csv::ByteRecord::new();
        let mut scratch = (String::new(), Vec::new());
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map(|p| p.line());
                    return Err(match e.into_kind() {
                        csv::ErrorKind::Io(source) => EhrError::Io {
                            path: path.to_path_buf(),
                            source,
                        },
                        other => format(line, format!("not CSV: {other:?}")),
                    });
                }
            }
            report.rows += 1;
            let line = record.position().map_or(report.rows + 1, |p| p.line());
            let field = |i: usize| {
                record
                    .get(columns[i])
                    .map(|f| std::str::from_utf8(f).map(str::trim))
            };
            let (term, system, code) = match (field(0), field(1), field(2)) {
                (Some(Ok(t)), Some(Ok(s)), Some(Ok(c))) => (t, s, c),
                (Some(Err(_)), _, _) | (_, Some(Err(_)), _) | (_, _, Some(Err(_))) => {
                    report.skip(line, "not valid UTF-8");
                    continue;
                }
                _ => {
                    report.skip(line, "fewer fields than the header");
                    continue;
                }
            };
            if system.is_empty() || code.is_empty() {
                report.skip(
                    line,
                    format!("term {term:?}: empty concept_system or concept_code"),
                );
                continue;
            }
            if dictionary.insert_with(term, system, code, &mut scratch) {
                report.used += 1;
            } else {
                report.skip(line, format!("term {term:?} has no letter or digit"));
            }
        }
        Ok((dictionary, report))
    }

    /// Adds `term` for concept `(system, code)`; `system` may be a short label or a FHIR
    /// system URI (mapped as codings are). `false` when the term has no token.
    pub fn insert(&mut self, term: &str, system: &str, code: &str) -> bool {
        self.insert_with(term, system, code, &mut (String::new(), Vec::new()))
    }

    fn insert_with(
        &mut self,
        term: &str,
        system: &str,
        code: &str,
        (buf, tokens): &mut (String, Vec<Token>),
    ) -> bool {
        tokenize(term, buf, tokens);
        let Some((first, rest)) = tokens.split_first() else {
            return false;
        };
        let key = (system_label(system).to_string(), code.trim().to_string());
        let next = self.concepts.len() as u32;
        let concept = *self.index.entry(key.clone()).or_insert(next);
        if concept == next {
            self.concepts.push(key);
        }
        let rest: Box<[Box<str>]> = rest.iter().map(|t| buf[t.lower.clone()].into()).collect();
        let entries = self
            .terms
            .entry(buf[first.lower.clone()].into())
            .or_default();
        match entries.iter_mut().find(|t| t.rest == rest) {
            Some(t) => {
                if !t.concepts.contains(&concept) {
                    t.concepts.push(concept);
                }
            }
            None => {
                self.len += 1;
                let at = entries.partition_point(|t| t.rest.len() >= rest.len());
                entries.insert(
                    at,
                    Term {
                        rest,
                        concepts: vec![concept],
                    },
                );
            }
        }
        true
    }

    /// Number of distinct terms.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the dictionary has no term.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `(system, code)` of concept `i` of a [`Mention`].
    pub fn concept(&self, i: u32) -> (&str, &str) {
        let (s, c) = &self.concepts[i as usize];
        (s, c)
    }

    /// Number of distinct concepts the terms name.
    pub fn concepts(&self) -> usize {
        self.concepts.len()
    }

    /// Every dictionary term in `text`, longest match first, with its negation.
    pub fn tag(&self, text: &str) -> Vec<Mention> {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        self.tag_into(text, &mut scratch, &mut out);
        out
    }

    /// [`Dictionary::tag`] reusing buffers (`out` is cleared first).
    pub fn tag_into(&self, text: &str, scratch: &mut Scratch, out: &mut Vec<Mention>) {
        out.clear();
        let Scratch { buf, tokens } = scratch;
        tokenize(text, buf, tokens);
        let word = |t: &Token| &buf[t.lower.clone()];
        let mut i = 0;
        while i < tokens.len() {
            let Some(candidates) = self.terms.get(word(&tokens[i])) else {
                i += 1;
                continue;
            };
            let matched = candidates.iter().find(|term| {
                let end = i + 1 + term.rest.len();
                end <= tokens.len()
                    && term
                        .rest
                        .iter()
                        .zip(&tokens[i + 1..end])
                        .all(|(w, t)| **w == *word(t))
            });
            let Some(term) = matched else {
                i += 1;
                continue;
            };
            let end = i + term.rest.len();
            out.push(Mention {
                span: tokens[i].span.start..tokens[end].span.end,
                concepts: term.concepts.clone(),
                negated: negated(buf, tokens, i),
            });
            i = end + 1;
        }
    }
}

/// Reusable buffers for [`Dictionary::tag_into`].
#[derive(Debug, Default)]
pub struct Scratch {
    buf: String,
    tokens: Vec<Token>,
}

/// Whether a negation cue governs the mention starting at token `at`.
fn negated(buf: &str, tokens: &[Token], at: usize) -> bool {
    let word = |t: &Token| &buf[t.lower.clone()];
    let sentence = tokens[at].sentence;
    for j in (at.saturating_sub(NEGATION_WINDOW)..at).rev() {
        let t = &tokens[j];
        if t.sentence != sentence {
            return false;
        }
        let w = word(t);
        if TERMINATORS.contains(&w) {
            return false;
        }
        if CUES.contains(&w) {
            return true;
        }
        if j > 0 && tokens[j - 1].sentence == sentence {
            let before = word(&tokens[j - 1]);
            if CUE_PAIRS.iter().any(|&(a, b)| a == before && b == w) {
                return true;
            }
        }
    }
    false
}
