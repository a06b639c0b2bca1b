//! Import throughput: a synthetic 1,000,000-pair TRL JSONL file streamed into Parquet.
//!
//! Run with `cargo bench -p rlhf-prefdata --bench import` (release profile). Reports pairs/s
//! and the process's peak resident memory (`VmHWM` from `/proc/self/status`). Targets:
//! ≥ 100k pairs/s and < 512 MiB peak RSS. `PREFDATA_BENCH_PAIRS` overrides the pair count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use rlhf_prefdata::{
    CharCounter, Comparison, ComparisonReader, ComparisonWriter, ImportOptions, fill_token_lengths,
    import_trl,
};

const WORDS: &[&str] = &[
    "the", "model", "answer", "question", "because", "data", "reward", "policy", "value", "token",
    "human", "feedback", "align", "helpful", "safe", "explain", "why", "how", "what", "train",
    "数据", "模型", "回答", "问题", "因为", "奖励", "策略", "人类", "反馈", "对齐",
];

/// A small deterministic xorshift generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `min + (random % spread)` words.
    fn text(&mut self, min: usize, spread: u64, out: &mut String) {
        let words = min + (self.next() % spread) as usize;
        out.clear();
        for i in 0..words {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(WORDS[(self.next() % WORDS.len() as u64) as usize]);
        }
    }
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let n: usize = std::env::var("PREFDATA_BENCH_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let jsonl = dir.path().join("pairs.jsonl");
    let parquet = dir.path().join("pairs.parquet");

    // 1. Generate: 90 % standard string records, 10 % conversational with history.
    let t0 = Instant::now();
    {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&jsonl).expect("create"));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut p, mut c, mut r, mut h) =
            (String::new(), String::new(), String::new(), String::new());
        for i in 0..n {
            rng.text(12, 20, &mut p);
            rng.text(30, 60, &mut c);
            rng.text(30, 60, &mut r);
            let line = if i % 10 == 0 {
                rng.text(20, 1, &mut h);
                serde_json::json!({
                    "prompt": [
                        {"role": "user", "content": h},
                        {"role": "assistant", "content": c},
                        {"role": "user", "content": p},
                    ],
                    "chosen": [{"role": "assistant", "content": c}],
                    "rejected": [{"role": "assistant", "content": r}],
                })
            } else {
                serde_json::json!({"prompt": p, "chosen": c, "rejected": r})
            };
            serde_json::to_writer(&mut w, &line).expect("write");
            w.write_all(b"\n").expect("write");
        }
        w.flush().expect("flush");
    }
    let gen_s = t0.elapsed().as_secs_f64();
    let jsonl_bytes = std::fs::metadata(&jsonl).map(|m| m.len()).unwrap_or(0);
    let hwm_after_gen = vm_hwm_kib();

    // 2. Import: parse, count lengths, write Parquet, all streaming.
    let t1 = Instant::now();
    let mut writer = ComparisonWriter::create(&parquet).expect("writer");
    let report = import_trl(
        &jsonl,
        &ImportOptions::default(),
        &mut |mut c: Comparison| {
            fill_token_lengths(&mut c, &CharCounter);
            writer.write(&c)
        },
    )
    .expect("import");
    let summary = writer.finish().expect("finish");
    let import_s = t1.elapsed().as_secs_f64();

    // 3. Read back (streaming) to check the count.
    let t2 = Instant::now();
    let rows = ComparisonReader::open(&parquet)
        .expect("open")
        .comparisons()
        .try_fold(0u64, |n, c| c.map(|_| n + 1))
        .expect("read");
    let read_s = t2.elapsed().as_secs_f64();
    assert_eq!(rows, n as u64);
    assert_eq!(report.kept + report.total_dropped(), n as u64);

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("pairs:            {n}");
    println!(
        "generate JSONL:   {gen_s:.2} s ({:.1} MiB)",
        mib(jsonl_bytes)
    );
    println!(
        "import → Parquet: {import_s:.2} s = {:.0} pairs/s ({:.1} MiB/s of JSONL)",
        n as f64 / import_s,
        mib(jsonl_bytes) / import_s
    );
    println!(
        "parquet:          {:.1} MiB, {} row groups, kept {} dropped {}",
        mib(summary.bytes),
        summary.row_groups,
        report.kept,
        report.total_dropped()
    );
    println!(
        "read back:        {read_s:.2} s = {:.0} pairs/s",
        n as f64 / read_s
    );
    if let Some(k) = hwm_after_gen {
        println!("peak RSS after generation: {:.1} MiB", k as f64 / 1024.0);
    }
    match vm_hwm_kib() {
        Some(k) => println!("peak RSS (VmHWM): {:.1} MiB", k as f64 / 1024.0),
        None => println!("peak RSS (VmHWM): unavailable (no /proc/self/status)"),
    }
}
