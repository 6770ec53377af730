//! Buffers on the GPU: creation, upload, and the one way to read data back.
//!
//! A `GpuTensor` is a storage buffer of f32 or u32 words with its length. Reading back goes
//! through a staging buffer and waits for the GPU: every call of `read_*` is a sync point.

use super::Gpu;
use wgpu::util::DeviceExt;

#[derive(Clone)]
pub struct GpuTensor {
    pub buffer: wgpu::Buffer,
    /// Length in 4-byte words.
    pub len: usize,
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl GpuTensor {
    /// A zero-filled buffer of `len` words. Zero-length buffers get one word, since WebGPU
    /// bindings cannot be empty.
    pub fn zeros(gpu: &Gpu, label: &str, len: usize) -> GpuTensor {
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage: STORAGE,
            mapped_at_creation: false,
        });
        GpuTensor { buffer, len }
    }

    pub fn from_f32(gpu: &Gpu, label: &str, data: &[f32]) -> GpuTensor {
        Self::from_bytes(gpu, label, bytemuck::cast_slice(data), data.len())
    }

    pub fn from_u32(gpu: &Gpu, label: &str, data: &[u32]) -> GpuTensor {
        Self::from_bytes(gpu, label, bytemuck::cast_slice(data), data.len())
    }

    fn from_bytes(gpu: &Gpu, label: &str, bytes: &[u8], len: usize) -> GpuTensor {
        let contents: Vec<u8> = if bytes.is_empty() { vec![0; 4] } else { bytes.to_vec() };
        let buffer = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &contents,
            usage: STORAGE,
        });
        GpuTensor { buffer, len }
    }

    pub fn write_f32(&self, gpu: &Gpu, data: &[f32]) {
        assert!(data.len() <= self.len.max(1), "write of {} words into {}", data.len(), self.len);
        gpu.queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
    }

    pub fn write_u32(&self, gpu: &Gpu, data: &[u32]) {
        assert!(data.len() <= self.len.max(1), "write of {} words into {}", data.len(), self.len);
        gpu.queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
    }

    /// Copies the whole tensor to the CPU. Sync point: waits for all submitted work.
    pub async fn read_f32(&self, gpu: &Gpu) -> Result<Vec<f32>, String> {
        let bytes = read_bytes(gpu, &self.buffer, 0, (self.len * 4) as u64).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

/// A uniform buffer holding a kernel's `Params` struct, given as 4-byte words.
pub fn uniform(gpu: &Gpu, label: &str, words: &[u32]) -> wgpu::Buffer {
    let mut padded = words.to_vec();
    padded.resize(words.len().div_ceil(4).max(1) * 4, 0);
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(&padded),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// Reads `size` bytes of `buffer` from `offset`. Sync point: submits a copy and waits for it.
pub async fn read_bytes(gpu: &Gpu, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>, String> {
    if size == 0 {
        return Ok(Vec::new());
    }
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("read-back staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
    gpu.queue.submit([encoder.finish()]);
    map_and_read(gpu, &staging).await
}

/// Maps a MAP_READ buffer that already holds the data and returns its bytes, or why it could
/// not (a lost device, an error in the work that filled it).
pub async fn map_and_read(gpu: &Gpu, staging: &wgpu::Buffer) -> Result<Vec<u8>, String> {
    let (tx, rx) = futures_channel::oneshot::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    // Natively nothing moves until polled; in the browser the promise resolves by itself.
    #[cfg(not(target_arch = "wasm32"))]
    gpu.wait();
    #[cfg(target_arch = "wasm32")]
    let _ = gpu;
    let why = |e: String| gpu.failure().unwrap_or(e);
    match rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(why(format!("reading from the GPU failed: {e}"))),
        Err(_) => return Err(why("reading from the GPU failed: the device dropped the request".into())),
    }
    let bytes = match staging.slice(..).get_mapped_range() {
        Ok(view) => view.to_vec(),
        Err(e) => return Err(why(format!("reading from the GPU failed: {e:?}"))),
    };
    staging.unmap();
    // The copy may have succeeded while the work that filled the buffer did not (a validation
    // error skips a command buffer, leaving old values): after any fault, nothing read is
    // trusted, so a checkpoint is never written from it.
    match gpu.failure() {
        Some(failure) => Err(failure),
        None => Ok(bytes),
    }
}
