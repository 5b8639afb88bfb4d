//! `contrastive_svd` end to end: sites release noisy clipped contrastive sums in one round,
//! the coordinator's SVD recovers the generator's true image and text subspaces, and more
//! sites recover them better.

use silo_common::synth::pairs::{
    class_prompts_safetensors, matrix_from_rows, sin_theta, to_safetensors,
};
use silo_common::tensorfile::read_safetensors;
use silo_tests::jobs::{self, Admin};
use silo_tests::{Deployment, PAIRS_DATASET, SiteSetup, pairs_generator};

/// Runs a contrastive_svd job over `sites` (evaluated on the public files in `eval_dir`);
/// returns sin θ of the (image, text) encoders and the report's evaluation.
async fn run(
    admin: &mut Admin,
    sites: &[&str],
    eval_dir: &std::path::Path,
) -> (f64, f64, serde_json::Value) {
    let list: Vec<String> = sites.iter().map(|s| format!("{s:?}")).collect();
    let spec = format!(
        "kind = \"contrastive_svd\"\nname = \"lin\"\ndataset = \"{PAIRS_DATASET}\"\n\
         sites = [{}]\nmin_sites = {}\nround_timeout_seconds = 120\n\
         [privacy]\nepsilon = 2.0\ndelta = 1e-5\n\
         [params]\nrank = 8\nclip_norm = 1.5\nlambda = 1.0\n\
         eval = {:?}\nclass_prompts = {:?}\n",
        list.join(", "),
        sites.len(),
        eval_dir.join("eval.safetensors").display().to_string(),
        eval_dir
            .join("class_prompts.safetensors")
            .display()
            .to_string(),
    );
    let id = jobs::submit_toml(admin, spec).await;
    let done = jobs::wait_for_end(admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    let files = jobs::result_files(admin, &id).await.unwrap();
    let model = &files
        .iter()
        .find(|(n, _)| n == "model.safetensors")
        .unwrap()
        .1;
    let tensors = read_safetensors(model).unwrap();
    let get = |name: &str| {
        let t = tensors.iter().find(|t| t.name == name).unwrap();
        matrix_from_rows(&t.to_f32(), t.shape[0], t.shape[1])
    };
    let report: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "report.json").unwrap().1).unwrap();
    let truth = pairs_generator();
    let truth = truth.truth();
    (
        sin_theta(truth.u1.as_ref(), get("image_encoder").as_ref()).unwrap(),
        sin_theta(truth.u2.as_ref(), get("text_encoder").as_ref()).unwrap(),
        report["evaluation"]["image_to_text"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_recover_the_true_encoders_better_than_one() {
    let deployment = Deployment::start().await;
    let names = ["hospital-a", "hospital-b", "hospital-c"];
    let files: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| deployment.add_site(SiteSetup::new(name, i).budget(8.0).pairs(10_000)))
        .collect();
    let mut running = Vec::new();
    for f in &files {
        running.push(deployment.start_site(f).await);
    }
    let mut admin = deployment.admin().await;
    // The public evaluation set and class prompts, as `silo synth pairs` writes them.
    let generator = pairs_generator();
    let eval = generator.site(1000, 2000, 0);
    std::fs::write(
        deployment.path().join("eval.safetensors"),
        to_safetensors(&eval),
    )
    .unwrap();
    std::fs::write(
        deployment.path().join("class_prompts.safetensors"),
        class_prompts_safetensors(&generator),
    )
    .unwrap();
    let (one_x, one_y, _) = run(&mut admin, &names[..1], deployment.path()).await;
    let (all_x, all_y, evaluation) = run(&mut admin, &names, deployment.path()).await;
    eprintln!("evaluation: {evaluation}");
    // Chance: recall@10 = 10 / 2000, zero-shot 1 / 10.
    assert!(
        evaluation["recall_at_10"].as_f64().unwrap() > 0.05,
        "{evaluation}"
    );
    assert!(
        evaluation["zero_shot_accuracy"].as_f64().unwrap() > 0.5,
        "{evaluation}"
    );
    eprintln!("sin theta: one site ({one_x:.3}, {one_y:.3}), three sites ({all_x:.3}, {all_y:.3})");
    assert!(all_x < one_x && all_y < one_y, "more sites must help");
    assert!(all_x < 0.3 && all_y < 0.3, "({all_x}, {all_y})");
    // One charge per site and job, at most the job's ε.
    for f in &files {
        let entries: Vec<_> = f
            .ledger_entries()
            .into_iter()
            .filter(|e| e.dataset == PAIRS_DATASET)
            .collect();
        assert!(!entries.is_empty() && entries.len() <= 2, "{}", f.name);
        assert!(entries.iter().all(|e| e.epsilon <= 2.0 + 1e-6));
    }
    for site in running {
        site.stop().await;
    }
}
