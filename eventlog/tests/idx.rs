//! `.idx` sidecars are derived: written at each roll, rebuilt when missing,
//! torn or stale, and never change what the log reads back.

mod common;

use common::*;
use eventlog::mem_storage::{CrashMode, MemStorage};
use eventlog::Storage;

fn idx_files(s: &MemStorage) -> Vec<String> {
    s.list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".idx"))
        .collect()
}

#[test]
fn every_sealed_segment_gets_an_index() {
    let storage = MemStorage::new();
    let (recs, heads) = build(&storage, 60);
    let segs = segments(&storage);
    let idx = idx_files(&storage);
    assert_eq!(idx.len(), segs.len() - 1, "{segs:?} {idx:?}");
    let log = open(&storage).unwrap();
    assert_holds(&log, &recs, &heads);
}

#[test]
fn missing_torn_or_stale_indexes_are_rebuilt() {
    let storage = MemStorage::new();
    let (recs, heads) = build(&storage, 60);
    let idx = idx_files(&storage);
    let good: Vec<Vec<u8>> = idx.iter().map(|n| storage.file_bytes(n).unwrap()).collect();
    for (case, damage) in ["removed", "torn", "zeroed", "bit flip", "other segment's"]
        .iter()
        .enumerate()
    {
        let s = copy(&storage);
        for (k, name) in idx.iter().enumerate() {
            let b = &good[k];
            match case {
                0 => s.remove(name).unwrap(),
                1 => s.set_file_bytes(name, b[..b.len() / 2].to_vec()),
                2 => s.set_file_bytes(name, vec![0; b.len()]),
                3 => {
                    let mut b = b.clone();
                    b[70] ^= 4;
                    s.set_file_bytes(name, b);
                }
                _ => s.set_file_bytes(name, good[(k + 1) % good.len()].clone()),
            }
        }
        let log = open(&s).unwrap_or_else(|e| panic!("{damage}: {e}"));
        assert_holds(&log, &recs, &heads);
        drop(log);
        let rebuilt: Vec<Vec<u8>> = idx
            .iter()
            .map(|n| s.file_bytes(n).expect("rebuilt"))
            .collect();
        assert_eq!(rebuilt, good, "{damage}: rebuilt indexes differ");
    }
}

#[test]
fn indexes_survive_crashes() {
    for seed in 0..20 {
        let storage = MemStorage::new();
        let (recs, heads) = build(&storage, 50);
        let s = storage.crash(CrashMode::Random(seed));
        let log = open(&s).unwrap();
        assert_holds(&log, &recs, &heads);
    }
}
