//! `silo synth ehr` and `silo eval embeddings` end to end through the real binary: a tiny
//! synthetic federation, a perfect embedding built from its ground truth, and the AUC the
//! evaluator reports for it; plus the exit-2 contract for a malformed embeddings file.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Runs `silo` with `args`; (exit code, stdout, stderr).
fn silo(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_silo"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("silo runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn synth(dir: &Path, seed: &str) -> String {
    let (code, stdout, stderr) = silo(&[
        "synth",
        "ehr",
        "--sites",
        "2",
        "--patients",
        "40",
        "--clusters",
        "6",
        "--seed",
        seed,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    stdout
}

/// One-hot embeddings: concepts joined by a related pair share an axis, so every related
/// pair has cosine 1 and every other pair cosine 0. Header included, as documented.
fn perfect_embeddings(pairs_csv: &str) -> String {
    let mut parent: HashMap<String, String> = HashMap::new();
    fn root(parent: &mut HashMap<String, String>, k: &str) -> String {
        let p = parent
            .entry(k.to_string())
            .or_insert_with(|| k.to_string())
            .clone();
        if p == k {
            p
        } else {
            let r = root(parent, &p);
            parent.insert(k.to_string(), r.clone());
            r
        }
    }
    for line in pairs_csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (a, b) = (format!("{},{}", f[0], f[1]), format!("{},{}", f[2], f[3]));
        let (ra, rb) = (root(&mut parent, &a), root(&mut parent, &b));
        parent.insert(ra, rb);
    }
    let keys: Vec<String> = parent.keys().cloned().collect();
    let mut axes: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::new();
    for k in &keys {
        let r = root(&mut parent, k);
        let next = axes.len();
        rows.push((k.clone(), *axes.entry(r).or_insert(next)));
    }
    let dim = axes.len();
    let mut out = String::from("system,code");
    for j in 1..=dim {
        out.push_str(&format!(",v{j}"));
    }
    out.push('\n');
    for (k, axis) in rows {
        out.push_str(&k);
        for j in 0..dim {
            out.push_str(if j == axis { ",1" } else { ",0" });
        }
        out.push('\n');
    }
    out
}

#[test]
fn synth_then_perfect_embeddings_score_auc_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ehr");
    let summary = synth(&dir, "5");
    assert!(summary.contains("hospital-a: 40 patients"), "{summary}");
    assert!(summary.contains("hospital-b: 40 patients"), "{summary}");
    for site in ["hospital-a", "hospital-b"] {
        for table in [
            "person",
            "condition_occurrence",
            "drug_exposure",
            "measurement",
            "note",
            "note_nlp",
            "concept",
        ] {
            let p = dir.join(site).join("omop").join(format!("{table}.csv"));
            assert!(p.is_file(), "missing {}", p.display());
        }
    }
    let pairs = std::fs::read_to_string(dir.join("pairs.csv")).unwrap();
    assert!(pairs.starts_with("system_a,code_a,system_b,code_b,relation\n"));
    assert!(
        std::fs::read_to_string(dir.join("dictionary.csv"))
            .unwrap()
            .starts_with("term,concept_system,concept_code\n")
    );

    // Same seed, same data.
    let again = tmp.path().join("again");
    synth(&again, "5");
    for f in ["pairs.csv", "hospital-b/omop/note_nlp.csv"] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }

    let emb = tmp.path().join("emb.csv");
    std::fs::write(&emb, perfect_embeddings(&pairs)).unwrap();
    let (e, p) = (emb.to_str().unwrap(), dir.join("pairs.csv"));
    let p = p.to_str().unwrap();

    let (code, stdout, stderr) = silo(&["eval", "embeddings", "--embeddings", e, "--pairs", p]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let overall = stdout
        .lines()
        .find(|l| l.starts_with("overall"))
        .expect("overall row");
    let cells: Vec<&str> = overall.split_whitespace().collect();
    assert_eq!(cells[4..], ["1.000", "1.000", "1.000", "1.000"], "{stdout}");
    assert!(stdout.contains("code_note"), "{stdout}");

    let (code, stdout, _) = silo(&[
        "eval",
        "embeddings",
        "--embeddings",
        e,
        "--pairs",
        p,
        "--json",
        "--seed",
        "9",
    ]);
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(doc["overall"]["auc"], 1.0);
    assert_eq!(doc["overall"]["pairs_skipped"], 0);
    assert_eq!(
        doc["overall"]["pairs_used"].as_u64().unwrap() as usize,
        pairs.lines().count() - 1
    );
    assert_eq!(doc["relations"].as_array().unwrap().len(), 4);
}

#[test]
fn malformed_embeddings_file_is_one_line_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.csv");
    std::fs::write(
        &pairs,
        "system_a,code_a,system_b,code_b,relation\nA,1,B,1,r\n",
    )
    .unwrap();
    let emb = tmp.path().join("emb.csv");
    std::fs::write(&emb, "system,code,v1,v2\nA,1,0.5,0.5\nB,1,0.5,oops\n").unwrap();
    let (code, stdout, stderr) = silo(&[
        "eval",
        "embeddings",
        "--embeddings",
        emb.to_str().unwrap(),
        "--pairs",
        pairs.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("emb.csv:3"), "{stderr}");

    std::fs::write(&emb, "A,1,0.5\nB,1,0.5\n").unwrap();
    std::fs::write(&pairs, "A,1,B,1\n").unwrap();
    let (code, _, stderr) = silo(&[
        "eval",
        "embeddings",
        "--embeddings",
        emb.to_str().unwrap(),
        "--pairs",
        pairs.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("pairs.csv:1"), "{stderr}");
}
