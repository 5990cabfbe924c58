//! Shape buckets: the (batch, context) pairs a CUDA graph is captured for. A step runs in
//! the smallest bucket that holds it, its batch padded; lengths are read from device
//! memory, so one graph serves every length inside its context.

use gpu_kernels::abi::{MAX_BATCH, uses_tensor_cores};

/// One graph's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    /// Sequences (rows), real ones first, the rest padding.
    pub batch: usize,
    /// Positions attended to at most.
    pub context: usize,
}

/// The largest batch whose GEMVs and LM head run on CUDA cores.
fn largest_cuda_core_batch() -> usize {
    (1..=MAX_BATCH)
        .take_while(|&b| !uses_tensor_cores(b))
        .last()
        .unwrap_or(0) as usize
}

/// The buckets of an engine: every batch size crossed with every context.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketTable {
    batches: Vec<usize>,
    contexts: Vec<usize>,
}

impl BucketTable {
    /// Batch buckets 1, 2, 4, 8, 16, 32 and context buckets 128, 256, 512, 1024, cut to
    /// the engine's `max_batch` and `capacity`, which are buckets too: the default table
    /// holds every step the engine accepts.
    pub fn default_for(max_batch: usize, capacity: usize) -> Self {
        let cut = |sizes: &[usize], limit: usize| {
            let mut v: Vec<usize> = sizes.iter().copied().filter(|&s| s < limit).collect();
            v.push(limit);
            v
        };
        BucketTable {
            batches: cut(&[1, 2, 4, 8, 16, 32], max_batch.max(1)),
            contexts: cut(&[128, 256, 512, 1024], capacity.max(1)),
        }
    }

    /// These sizes (sorted, repeats dropped); each must fit the engine. Steps past the
    /// largest bucket are refused, or run eagerly where the engine allows it.
    ///
    /// One batch bucket may be added: the largest batch the CUDA-core GEMVs take (4),
    /// when a larger bucket is given. Batches up to it and past it run different kernels
    /// (tensor cores from 5 on, the same sums in another order), and a graph must run the
    /// kernels an eager step of its batch runs to be bit-identical to it.
    pub fn new(
        batches: &[usize],
        contexts: &[usize],
        max_batch: usize,
        capacity: usize,
    ) -> Result<Self, String> {
        let sizes = |sizes: &[usize], limit: usize, what: &str, limit_name: &str| {
            if sizes.is_empty() {
                return Err(format!("no {what} buckets were given"));
            }
            if let Some(bad) = sizes.iter().find(|&&s| s == 0 || s > limit) {
                return Err(format!(
                    "{what} bucket {bad} is outside 1..={limit} ({limit_name})"
                ));
            }
            let mut v = sizes.to_vec();
            v.sort_unstable();
            v.dedup();
            Ok(v)
        };
        let mut batches = sizes(batches, max_batch, "batch", "the engine's batch")?;
        let boundary = largest_cuda_core_batch();
        if batches.iter().any(|&b| b > boundary) && !batches.contains(&boundary) {
            batches.push(boundary);
            batches.sort_unstable();
        }
        Ok(BucketTable {
            batches,
            contexts: sizes(contexts, capacity, "context", "the engine's context")?,
        })
    }

    /// The batch buckets, smallest first.
    pub fn batches(&self) -> Vec<usize> {
        self.batches.clone()
    }

    /// The context buckets, smallest first.
    pub fn contexts(&self) -> Vec<usize> {
        self.contexts.clone()
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
    fn given_buckets_are_kept_exactly_and_checked() {
        let t = BucketTable::new(&[4, 1, 4], &[256, 64], 8, 1024).unwrap();
        assert_eq!(t.batches, [1, 4]);
        assert_eq!(t.contexts, [64, 256]);
        assert_eq!(
            t.choose(1, 300).unwrap_err(),
            "300 positions are more than the largest context bucket, 256"
        );
        assert_eq!(
            BucketTable::new(&[1, 16], &[128], 8, 1024).unwrap_err(),
            "batch bucket 16 is outside 1..=8 (the engine's batch)"
        );
        assert_eq!(
            BucketTable::new(&[1], &[0], 8, 1024).unwrap_err(),
            "context bucket 0 is outside 1..=1024 (the engine's context)"
        );
        assert_eq!(
            BucketTable::new(&[], &[128], 8, 1024).unwrap_err(),
            "no batch buckets were given"
        );
    }

    #[test]
    fn the_tensor_core_boundary_is_a_bucket_when_larger_ones_are() {
        assert_eq!(largest_cuda_core_batch(), 1);
        let t = BucketTable::new(&[4, 8, 32], &[128], 32, 1024).unwrap();
        assert_eq!(t.batches, [1, 4, 8, 32]);
        // Batch 1 stays on the CUDA-core kernels its eager step runs.
        assert_eq!(t.choose(1, 10).unwrap().batch, 1);
        assert_eq!(t.choose(3, 10).unwrap().batch, 4);
        let t = BucketTable::new(&[1], &[128], 32, 1024).unwrap();
        assert_eq!(t.batches, [1]);
        let t = BucketTable::new(&[1, 6], &[128], 32, 1024).unwrap();
        assert_eq!(t.batches, [1, 6]);
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
