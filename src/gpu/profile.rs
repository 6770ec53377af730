//! Per-kernel GPU time from timestamp queries, where the adapter offers them: each dispatch is
//! recorded in its own compute pass with a begin and an end timestamp. For benchmarks only;
//! training records whole steps in one pass.

use super::{map_and_read, Gpu, Kernel, Program};

/// Runs `programs` once, each dispatch timed; returns (kernel, nanoseconds) in dispatch order,
/// or None when the adapter has no timestamp queries. Each program's clears come before its
/// first dispatch, as in a real step. Sync point: waits for the results.
pub async fn profile(gpu: &Gpu, programs: &[&Program]) -> Result<Option<Vec<(Kernel, f64)>>, String> {
    if !gpu.has_timestamps() {
        return Ok(None);
    }
    let dispatches: Vec<_> = programs.iter().flat_map(|p| p.dispatches.iter()).collect();
    let count = (dispatches.len() * 2) as u32;
    if count == 0 || count > wgpu::QUERY_SET_MAX_QUERIES {
        return Ok(None);
    }
    let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("kernel timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let size = count as u64 * 8;
    let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps"),
        size,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps read-back"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let mut i = 0;
    for program in programs {
        for t in &program.clears {
            t.clear(&mut encoder);
        }
        for d in &program.dispatches {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.kernel.name()),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &queries,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
            drop(pass);
            i += 1;
        }
    }
    encoder.resolve_query_set(&queries, 0..count, &resolved, 0);
    encoder.copy_buffer_to_buffer(&resolved, 0, &staging, 0, size);
    gpu.queue.submit([encoder.finish()]);
    let bytes = map_and_read(gpu, &staging).await?;
    let stamps: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
    if stamps.len() != count as usize {
        return Err("the GPU returned too few timestamps".into());
    }
    let period = gpu.queue.get_timestamp_period() as f64;
    Ok(Some(
        dispatches
            .iter()
            .enumerate()
            .map(|(i, d)| (d.kernel, stamps[2 * i + 1].saturating_sub(stamps[2 * i]) as f64 * period))
            .collect(),
    ))
}

/// Sums per-kernel times by kernel name, largest first: (name, total ns, launches).
pub fn by_kernel(times: &[(Kernel, f64)]) -> Vec<(&'static str, f64, usize)> {
    let mut out: Vec<(&'static str, f64, usize)> = Vec::new();
    for (k, ns) in times {
        match out.iter_mut().find(|(n, _, _)| *n == k.name()) {
            Some(e) => {
                e.1 += ns;
                e.2 += 1;
            }
            None => out.push((k.name(), *ns, 1)),
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}
