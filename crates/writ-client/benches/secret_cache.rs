//! Reads of a warm secret cache, the hot path of a function that asks for its secret on
//! every invocation; beside the floor, a bare `HashMap` lookup and `Arc` clone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use writ_client::secrets::{CachePolicy, Fetch, FetchError, SecretCache, SecretValue};

struct Fixed;

impl Fetch for Fixed {
    async fn fetch(&self, name: &str) -> Result<SecretValue, FetchError> {
        Ok(SecretValue::text(
            name,
            "v1",
            "postgres://orders:s3cr3t@db/orders",
        ))
    }
}

const READS: u64 = 1000;

fn reads(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let policy = CachePolicy {
        ttl: Duration::from_secs(3600),
        refresh_after: Duration::from_secs(3000),
        ..CachePolicy::default()
    };
    let cache = SecretCache::new(Fixed, policy);
    let names: Vec<String> = (0..10).map(|i| format!("prod/secret-{i}")).collect();
    runtime.block_on(async {
        for n in &names {
            cache.get(n).await.expect("warm");
        }
    });
    let mut group = c.benchmark_group("secret_cache");
    group.throughput(Throughput::Elements(READS));
    group.bench_function("get_warm_x1000", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for i in 0..READS as usize {
                    let v = cache.get(&names[i % names.len()]).await.expect("hit");
                    std::hint::black_box(v);
                }
            })
        })
    });
    let floor: HashMap<String, Arc<SecretValue>> = names
        .iter()
        .map(|n| (n.clone(), Arc::new(SecretValue::text(n, "v1", "x"))))
        .collect();
    group.bench_function("floor_hashmap_arc_clone_x1000", |b| {
        b.iter(|| {
            for i in 0..READS as usize {
                std::hint::black_box(floor.get(&names[i % names.len()]).cloned());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, reads);
criterion_main!(benches);
