//! Votes cast over HTTP, exported to the preference-data schema: majorities, dropped ties,
//! agreement figures and report files.

use serde_json::{Value, json};

use crate::support::*;

/// Votes for a response in file terms (`a`, `b`) or `tie`, whatever side it is shown on.
async fn vote_for(c: &Client, want: &str) -> String {
    let next = c.next().await.unwrap();
    let pair = &next.body["pair"];
    let id = pair["pair_id"].as_str().unwrap().to_owned();
    let left_is_a = pair["left"].as_str().unwrap().starts_with("Answer A");
    let choice = match (want, left_is_a) {
        ("tie", _) => "tie",
        ("a", true) | ("b", false) => "left",
        _ => "right",
    };
    let r = c
        .vote(&json!({"pair_id": id, "choice": choice, "criteria": {"helpfulness": choice}}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_majorities_in_the_prefdata_schema_with_agreement() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 4);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["u1", "u2", "u3"]);
    let server = start(config(&pairs_path, &dir, 3)).await;
    let plan = [
        ["a", "b", "tie", "a"], // u1 on p0000..p0003
        ["a", "b", "tie", "b"], // u2
        ["b", "b", "a", "tie"], // u3
    ];
    for ((name, token), votes) in acc.iter().zip(plan) {
        let mut c = Client::new(&server.base());
        c.login(name, token).await;
        if name == "u3" {
            // A vote for a, withdrawn and replaced by b.
            assert_eq!(vote_for(&c, "a").await, "p0000");
            assert_eq!(c.undo().await.unwrap().status, 200);
        }
        for (i, want) in votes.iter().enumerate() {
            assert_eq!(vote_for(&c, want).await, format!("p{i:04}"));
        }
    }
    server.stop().await;

    let out = tmp.path().join("prefs.parquet");
    let rep =
        rlhf_annotate::export(&dir, None, &out, &rlhf_annotate::ExportOptions::default()).unwrap();
    assert_eq!(
        (rep.votes_cast, rep.votes_undone, rep.votes_live),
        (13, 1, 12)
    );
    assert_eq!(
        (rep.tie_majority, rep.no_majority, rep.majority_pairs),
        (1, 1, 2)
    );
    assert_eq!(rep.exported, 2);
    // Fleiss by hand: items [2,1,0] [0,3,0] [1,0,2] [1,1,1] → P̄ = 5/12, P̄e = 50/144,
    // κ = (60 − 50) / (144 − 50) = 10/94.
    let k = rep.agreement.fleiss_kappa.unwrap();
    assert!((k - 10.0 / 94.0).abs() < 1e-12, "{k}");
    assert_eq!(rep.agreement.cohen_rater_pairs, 3);
    let u3 = rep.annotators.iter().find(|a| a.name == "u3").unwrap();
    assert_eq!((u3.votes, u3.undone), (4, 1));
    assert!(u3.median_seconds.is_some());

    // The export is ordinary preference data.
    let rows = rlhf_prefdata::read_comparisons(&out).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, "annotate:p0000");
    assert_eq!(rows[0].chosen, "Answer A to 0.");
    assert_eq!(rows[0].rejected, SCRIPT_RESPONSE);
    assert_eq!(rows[0].history.len(), 2);
    assert_eq!(rows[0].margin, Some(1.0));
    assert_eq!(rows[0].annotators, ["u1", "u2", "u3"]);
    assert_eq!(
        rows[0].helpfulness,
        Some(rlhf_prefdata::CriterionLabel::Chosen)
    );
    assert_eq!(rows[1].id, "annotate:p0001");
    assert_eq!(rows[1].chosen, "Answer B to 1.");
    assert_eq!(rows[1].margin, Some(3.0));
    assert_eq!(
        rows[1].prompt_quality,
        Some(rlhf_prefdata::PromptQuality::UnclearIntent)
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("prefs.report.json")).unwrap())
            .unwrap();
    assert_eq!(json["exported"], 2);
    let md = std::fs::read_to_string(tmp.path().join("prefs.report.md")).unwrap();
    assert!(md.contains("Fleiss' κ | 0.106"), "{md}");

    // Another pairs file cannot be matched against this journal.
    let other = tmp.path().join("other.parquet");
    rlhf_annotate::write_pairs(&other, &pairs(5)).unwrap();
    let err = rlhf_annotate::export(&dir, Some(&other), &out, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("differs from the pairs file"), "{err}");
}
