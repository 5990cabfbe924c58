//! Shape buckets: the (batch, context) pairs a CUDA graph is captured for. A step runs in
//! the smallest bucket that holds it, its batch padded; lengths are read from device
//! memory, so one graph serves every length inside its context.

/// One graph's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    /// Sequences (rows), real ones first, the rest padding.
    pub batch: usize,
    /// Positions attended to at most.
    pub context: usize,
}

/// The buckets of an engine: every batch size crossed with every context.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketTable {
    batches: Vec<usize>,
    contexts: Vec<usize>,
}

impl BucketTable {
    /// Batch buckets 1, 2, 4, 8, 16, 32 and context buckets 128, 256, 512, 1024, cut to
    /// the engine's `max_batch` and `capacity` (each included as the last bucket).
    pub fn default_for(max_batch: usize, capacity: usize) -> Self {
        Self::new(
            &[1, 2, 4, 8, 16, 32],
            &[128, 256, 512, 1024],
            max_batch,
            capacity,
        )
    }

    /// Given sizes, cut to the engine's limits; the limits themselves are always buckets
    /// so that everything the engine accepts has one.
    pub fn new(batches: &[usize], contexts: &[usize], max_batch: usize, capacity: usize) -> Self {
        let cut = |sizes: &[usize], limit: usize| {
            let mut v: Vec<usize> = sizes
                .iter()
                .copied()
                .filter(|&s| s > 0 && s < limit)
                .collect();
            v.push(limit);
            v.sort_unstable();
            v.dedup();
            v
        };
        BucketTable {
            batches: cut(batches, max_batch),
            contexts: cut(contexts, capacity),
        }
    }

    /// Every bucket, smallest first.
    pub fn all(&self) -> Vec<Bucket> {
        self.batches
            .iter()
            .flat_map(|&batch| {
                self.contexts
                    .iter()
                    .map(move |&context| Bucket { batch, context })
            })
            .collect()
    }

    /// The smallest bucket holding `batch` sequences attending to `positions`, or why
    /// there is none.
    pub fn choose(&self, batch: usize, positions: usize) -> Result<Bucket, String> {
        let batch_bucket = self.batches.iter().find(|&&b| b >= batch).ok_or_else(|| {
            format!(
                "batch {batch} is larger than the largest bucket, {}",
                self.batches.last().unwrap()
            )
        })?;
        let context = self
            .contexts
            .iter()
            .find(|&&c| c >= positions)
            .ok_or_else(|| {
                format!(
                    "{positions} positions are more than the largest context bucket, {}",
                    self.contexts.last().unwrap()
                )
            })?;
        Ok(Bucket {
            batch: *batch_bucket,
            context: *context,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_is_cut_to_the_engine() {
        let t = BucketTable::default_for(8, 1024);
        assert_eq!(t.batches, [1, 2, 4, 8]);
        assert_eq!(t.contexts, [128, 256, 512, 1024]);
        let odd = BucketTable::default_for(5, 300);
        assert_eq!(odd.batches, [1, 2, 4, 5]);
        assert_eq!(odd.contexts, [128, 256, 300]);
        assert_eq!(odd.all().len(), 12);
    }

    #[test]
    fn choose_pads_up_to_the_smallest_bucket() {
        let t = BucketTable::default_for(32, 1024);
        let pick = |batch, positions| {
            let b = t.choose(batch, positions).unwrap();
            (b.batch, b.context)
        };
        assert_eq!(pick(3, 1), (4, 128));
        assert_eq!(pick(1, 128), (1, 128));
        assert_eq!(pick(1, 129), (1, 256));
        assert_eq!(pick(32, 1024), (32, 1024));
    }

    #[test]
    fn too_large_names_the_limit() {
        let t = BucketTable::default_for(8, 512);
        assert_eq!(
            t.choose(9, 1).unwrap_err(),
            "batch 9 is larger than the largest bucket, 8"
        );
        assert_eq!(
            t.choose(1, 513).unwrap_err(),
            "513 positions are more than the largest context bucket, 512"
        );
    }
}
