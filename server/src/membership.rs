//! The groups a caller belongs to, resolved from the projections' member
//! index and cached until the projections change: every request needs its
//! principals, and most requests come from callers seen a moment ago.

use std::collections::HashMap;
use std::sync::Mutex;

use projections::{ProjectionError, Projections};

/// Entries kept at most; the cache is emptied past it.
const MAX_ENTRIES: usize = 10_000;

/// Cached `groups_of` answers, tagged with the projections' generation.
#[derive(Debug, Default)]
pub struct Memberships {
    cache: Mutex<HashMap<String, (u64, Vec<String>)>>,
}

impl Memberships {
    /// Group URIs whose `members` name `member`.
    pub fn groups_of(&self, p: &Projections, member: &str) -> Result<Vec<String>, ProjectionError> {
        let generation = p.generation();
        if let Ok(cache) = self.cache.lock() {
            if let Some((g, groups)) = cache.get(member) {
                if *g == generation {
                    return Ok(groups.clone());
                }
            }
        }
        let groups = p.groups_of(member)?;
        // Only a read that no batch overlapped may be cached: an even
        // generation, unchanged after the read.
        if generation & 1 == 0 && p.generation() == generation {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
                cache.insert(member.to_owned(), (generation, groups.clone()));
            }
        }
        Ok(groups)
    }
}
