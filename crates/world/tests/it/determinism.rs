//! Same seed, same bytes; the committed files are what the generator makes.

use std::path::Path;

use rlhf_world::{Dataset, Error, GoldJudge, WorldConfig};

use crate::common::default_set;

#[test]
fn two_runs_write_byte_identical_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let wa = default_set().write(a.path()).unwrap();
    let wb = Dataset::generate(&WorldConfig::default())
        .unwrap()
        .write(b.path())
        .unwrap();
    assert_eq!(wa.len(), 9);
    assert_eq!(wb.len(), wa.len());
    for ((pa, na), (pb, nb)) in wa.iter().zip(&wb) {
        assert_eq!(pa.file_name(), pb.file_name());
        assert_eq!(na, nb);
        assert!(
            std::fs::read(pa).unwrap() == std::fs::read(pb).unwrap(),
            "{} differs between runs",
            pa.display()
        );
    }
}

#[test]
fn another_seed_gives_another_world() {
    let cfg = WorldConfig {
        train_prompts: 300,
        eval_prompts: 30,
        ..WorldConfig::with_seed(7)
    };
    let other = Dataset::generate(&cfg).unwrap();
    assert_ne!(other.world, default_set().world);
    assert_ne!(other.train[0].prompt, default_set().train[0].prompt);
}

#[test]
fn the_judge_loads_from_the_files_and_rejects_edited_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = WorldConfig {
        train_prompts: 300,
        eval_prompts: 30,
        ..WorldConfig::with_seed(11)
    };
    let data = Dataset::generate(&cfg).unwrap();
    data.write(dir.path()).unwrap();
    let judge = GoldJudge::load(dir.path()).unwrap();
    let p = &data.eval[3];
    assert_eq!(judge.prompt(&p.id), Some(p));
    assert_eq!(judge.verdict(p, &p.reference).score, 8);
    assert_eq!(judge.prompts().count(), 330);

    let path = dir.path().join(rlhf_world::EVAL_PROMPTS_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen(&p.answer, &format!("{}x", p.answer), 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    assert!(matches!(
        GoldJudge::load(dir.path()),
        Err(Error::Mismatch(_))
    ));
}

/// The files under `data/world` are exactly what the default configuration generates (rerun
/// `cargo xtask data gen-world` after changing the generator). They are committed, so a missing
/// file is a failure, never a skip.
#[test]
fn committed_files_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/world");
    let mut checked = 0;
    for (name, bytes) in default_set().files() {
        let path = dir.join(name);
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (data/world is committed; run `cargo xtask data gen-world`)",
                path.display()
            )
        });
        assert!(
            on_disk == bytes,
            "data/world/{name} is stale: run `cargo xtask data gen-world`"
        );
        checked += 1;
    }
    assert_eq!(checked, 9, "the generator writes 9 files");
    assert!(dir.join(rlhf_world::WORLD_FILE).is_file());
}
