//! Crash consistency (issue 3): concurrent writers, `kill -9` at a random
//! moment, restart on the same data directory. Every write that got a 2xx
//! is there with its content, nothing is half-applied (an unacknowledged
//! write is either fully there or not at all), timestamps keep increasing.
//! Several rounds, each building on the state the previous one left.
//!
//! The seed is printed; `CRASH_SEED=<n>` replays a run's kill moments.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_tests::http::Endpoint;
use cairn_tests::*;
use serde_json::{json, Value};

const WRITERS: usize = 6;
const ROUNDS: usize = 5;
const RECORDS: &str = "/buckets/crash/collections/c/records";

/// xorshift64*: enough randomness for kill moments and op choices.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A record's state as the model knows it.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Absent,
    /// Content version `seq`, at `lm` when acknowledged.
    Live {
        seq: u64,
        lm: Option<u64>,
    },
    Deleted {
        lm: Option<u64>,
    },
}

#[derive(Debug, Clone)]
struct Track {
    writer: usize,
    /// Last acknowledged state.
    acked: State,
    /// The write in flight when the server died (not acknowledged).
    pending: Option<State>,
}

fn content(writer: usize, seq: u64) -> Value {
    // Several fields derived from `seq`, and a size that varies with it, so
    // a torn or mixed write cannot look valid.
    json!({"w": writer, "seq": seq, "a": seq * 7, "b": format!("{seq}-{writer}-{seq}"),
           "pad": "x".repeat((seq % 40) as usize * 25)})
}

/// One writer's loop until the server is gone. Returns the tracks of the
/// ids it touched, in the model's terms.
fn writer(
    endpoint: Endpoint,
    user: User,
    w: usize,
    seed: u64,
    mut tracks: BTreeMap<String, Track>,
    round: usize,
) -> BTreeMap<String, Track> {
    let mut rng = Rng(seed | 1);
    let mut next_seq = 1 + tracks
        .values()
        .filter_map(|t| match t.acked {
            State::Live { seq, .. } => Some(seq),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut fresh = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let live: Vec<String> = tracks
            .iter()
            .filter(|(_, t)| matches!(t.acked, State::Live { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        let roll = rng.below(10);
        let (id, method, target_state) = if live.len() < 3 || roll < 4 {
            fresh += 1;
            (
                format!("w{w}-r{round}-{fresh}"),
                "PUT",
                State::Live {
                    seq: next_seq,
                    lm: None,
                },
            )
        } else if roll < 9 {
            (
                live[rng.below(live.len() as u64) as usize].clone(),
                "PUT",
                State::Live {
                    seq: next_seq,
                    lm: None,
                },
            )
        } else {
            (
                live[rng.below(live.len() as u64) as usize].clone(),
                "DELETE",
                State::Deleted { lm: None },
            )
        };
        let mut req = Request::new(&endpoint, method, &format!("{RECORDS}/{id}")).user(&user);
        if method == "PUT" {
            req = req.json(&json!({"data": content(w, next_seq)}));
        }
        let track = tracks.entry(id.clone()).or_insert(Track {
            writer: w,
            acked: State::Absent,
            pending: None,
        });
        track.pending = Some(target_state.clone());
        match req.try_send_timeout(Duration::from_secs(5)) {
            Ok(resp) if resp.status == 200 || resp.status == 201 => {
                let data = resp.data();
                let t = lm(&data);
                track.acked = match target_state {
                    State::Live { seq, .. } => {
                        let mut want = content(w, seq);
                        want["id"] = json!(id);
                        want["last_modified"] = json!(t);
                        assert_eq!(data, want, "the acknowledgement echoes the write");
                        State::Live { seq, lm: Some(t) }
                    }
                    _ => State::Deleted { lm: Some(t) },
                };
                track.pending = None;
                next_seq += 1;
            }
            Ok(resp) => panic!("writer {w}: unexpected answer\n{resp}"),
            // Transport error: the server died; the write is in doubt.
            Err(_) => break,
        }
    }
    tracks
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if Server::external_mode() {
        eprintln!("skipped: needs a spawned server");
        return;
    }
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed: CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::Builder::new()
        .prefix("cairn-crash-")
        .tempdir()
        .unwrap();
    let mut s = Server::start_on(&dir.path().join("data"));
    let user = User::new("crasher", "pw");
    s.put("/buckets/crash", &user, json!({})).expect(201);
    s.put("/buckets/crash/collections/c", &user, json!({}))
        .expect(201);

    let mut model: BTreeMap<String, Track> = BTreeMap::new();
    let mut max_lm = 0u64;
    let mut total_acked = 0usize;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(150 + rng.below(500));
        let endpoint = s.endpoint().clone();
        let mut per_writer: Vec<BTreeMap<String, Track>> = vec![BTreeMap::new(); WRITERS];
        for (id, t) in &model {
            per_writer[t.writer].insert(id.clone(), t.clone());
        }
        let seeds: Vec<u64> = (0..WRITERS).map(|_| rng.next()).collect();
        let results: Vec<BTreeMap<String, Track>> = std::thread::scope(|sc| {
            let handles: Vec<_> = per_writer
                .into_iter()
                .enumerate()
                .map(|(w, tracks)| {
                    let (endpoint, user, seed) = (endpoint.clone(), user.clone(), seeds[w]);
                    sc.spawn(move || writer(endpoint, user, w, seed, tracks, round))
                })
                .collect();
            std::thread::sleep(kill_after);
            s.kill9();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        model = results.into_iter().flatten().collect();
        let in_doubt = model.values().filter(|t| t.pending.is_some()).count();
        let acked_now: usize = model.values().filter(|t| t.pending.is_none()).count();
        total_acked += acked_now;
        eprintln!(
            "round {round}: killed after {kill_after:?}, {} records, {in_doubt} writes in doubt",
            model.len()
        );

        s.restart();
        // The server's view: every record once, with tombstones.
        let resp = s.get(&format!("{RECORDS}?_since=0"), &user).expect(200);
        let list_etag = resp.etag();
        let mut found: BTreeMap<String, Value> = BTreeMap::new();
        for o in resp.data().as_array().unwrap() {
            let id = o["id"].as_str().unwrap().to_string();
            assert!(
                found.insert(id.clone(), o.clone()).is_none(),
                "round {round}: {id} listed twice"
            );
        }
        let mut failures = Vec::new();
        for (id, track) in model.iter_mut() {
            let got = found.remove(id);
            let state = match &got {
                None => State::Absent,
                Some(o) if o["deleted"] == json!(true) => {
                    if o.as_object().unwrap().len() != 3 {
                        failures.push(format!("{id}: malformed tombstone {o}"));
                    }
                    State::Deleted { lm: Some(lm(o)) }
                }
                Some(o) => {
                    let seq = o["seq"].as_u64().unwrap_or(u64::MAX);
                    let mut want = content(track.writer, seq);
                    want["id"] = json!(id);
                    want["last_modified"] = o["last_modified"].clone();
                    if *o != want {
                        failures.push(format!("{id}: half-applied or corrupt content {o}"));
                    }
                    State::Live {
                        seq,
                        lm: Some(lm(o)),
                    }
                }
            };
            // Either the acknowledged state exactly (timestamp included), or
            // the in-flight write applied whole.
            let is_acked = state == track.acked
                || (track.acked == State::Absent && state == State::Absent)
                || matches!(
                    (&track.acked, &state),
                    (State::Deleted { lm: None }, State::Deleted { .. })
                );
            let is_pending = match (&track.pending, &state) {
                (Some(State::Live { seq: p, .. }), State::Live { seq, .. }) => p == seq,
                (Some(State::Deleted { .. }), State::Deleted { .. }) => true,
                (Some(State::Deleted { .. }), State::Absent) => track.acked == State::Absent,
                _ => false,
            };
            if !is_acked && !is_pending {
                failures.push(format!(
                    "{id}: after restart {state:?}, acknowledged {:?}, in flight {:?}",
                    track.acked, track.pending
                ));
            }
            if let State::Live { lm: Some(t), .. } | State::Deleted { lm: Some(t) } = state {
                max_lm = max_lm.max(t);
                if is_pending && !is_acked {
                    let acked_lm = match track.acked {
                        State::Live { lm: Some(a), .. } | State::Deleted { lm: Some(a) } => a,
                        _ => 0,
                    };
                    if t <= acked_lm {
                        failures.push(format!(
                            "{id}: in-flight write applied at {t} <= acknowledged {acked_lm}"
                        ));
                    }
                }
            }
            track.acked = state;
            track.pending = None;
        }
        found.retain(|id, _| !id.starts_with("probe-"));
        for (id, o) in &found {
            failures.push(format!("{id}: present but never written: {o}"));
        }
        assert!(
            failures.is_empty(),
            "round {round} (seed {seed}):\n{}",
            failures.join("\n")
        );

        // Single GETs agree with the list for a sample.
        for (id, track) in model.iter().take(20) {
            let r = s.get(&format!("{RECORDS}/{id}"), &user);
            match &track.acked {
                State::Live { lm: Some(t), .. } => {
                    assert_eq!((r.status, lm(&r.data())), (200, *t), "{id}\n{r}")
                }
                _ => assert_eq!(r.status, 404, "{id}\n{r}"),
            }
        }
        // Timestamps keep increasing.
        assert!(
            list_etag >= max_lm,
            "round {round}: list ETag {list_etag} < newest record {max_lm}"
        );
        let t = lm(&s
            .put(&format!("{RECORDS}/probe-{round}"), &user, json!({}))
            .expect(201)
            .data());
        assert!(
            t > max_lm && t > list_etag,
            "round {round}: new write at {t}, already seen {max_lm}/{list_etag}"
        );
        s.delete(&format!("{RECORDS}/probe-{round}"), &user)
            .expect(200);
        max_lm = max_lm.max(t);
    }
    assert!(
        total_acked > 20,
        "too few acknowledged writes ({total_acked}) for the test to mean anything"
    );
}
