//! Log throughput without the network: appends of 16 KiB batches (16 records of 1 KiB), with
//! and without an fsync per append, and sequential reads. `cargo bench --bench log`.

// A benchmark: a failed expect is a failed run (the crate's lints deny them outside tests).
#![allow(clippy::expect_used)]

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rivulet::log::{AppendOptions, LogConfig, PartitionLog};

fn batch() -> Bytes {
    rivulet::test_support::payload_batch(16, &Bytes::from(vec![7u8; 1024]), 1_700_000_000_000)
}

fn run(label: &str, appends: usize, sync_every: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).expect("open");
    let template = batch();
    let opts = AppendOptions::leader(1_700_000_000_000, 0, false);
    let start = Instant::now();
    for i in 0..appends {
        let mut b = BytesMut::from(&template[..]);
        let info = log.append(&mut b, &opts).expect("append");
        if sync_every > 0 && (i + 1) % sync_every == 0 {
            log.sync(info.last_offset + 1).expect("sync");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (appends * template.len()) as f64 / 1e6;
    println!(
        "{label}: {:.0} MB/s, {:.0} records/s",
        mb / secs,
        (appends * 16) as f64 / secs
    );
    if sync_every == 0 {
        let start = Instant::now();
        let mut offset = 0;
        let mut bytes = 0usize;
        while offset < log.log_end_offset() {
            let r = log.read(offset, 1 << 20, true).expect("read");
            bytes += r.records.len();
            offset += (r.records.len() / template.len()) as i64 * 16;
        }
        let secs = start.elapsed().as_secs_f64();
        println!("sequential read: {:.0} MB/s", bytes as f64 / 1e6 / secs);
    }
}

fn main() {
    run("append, no fsync", 20_000, 0);
    run("append, fsync every 64 appends (1 MiB)", 5_000, 64);
    run("append, fsync every append (16 KiB)", 1_000, 1);
}
