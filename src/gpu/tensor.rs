//! Buffers on the GPU: creation, upload, and the one way to read data back.
//!
//! A `GpuTensor` is a range of f32 or u32 words in a storage buffer: a buffer of its own, or a
//! place in an arena shared with other tensors (see `gpt::weights`), so that one dispatch can
//! update every parameter. Kernels bind it through `bind()`, which covers its range only.
//! Reading back goes through a staging buffer and waits for the GPU: every call of `read_*` is
//! a sync point.

use super::Gpu;
use wgpu::util::DeviceExt;

#[derive(Clone)]
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    /// Where the tensor starts in `buffer`, in bytes (0 unless it lives in an arena).
    offset: u64,
    /// Length in 4-byte words.
    pub len: usize,
}

/// A range of a buffer that a kernel binds: a tensor's, or a whole buffer's (a uniform).
#[derive(Clone, Copy)]
pub struct Bind<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    /// Bytes; None binds to the end of the buffer.
    pub size: Option<std::num::NonZeroU64>,
}

impl<'a> From<&'a wgpu::Buffer> for Bind<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Bind<'a> {
        Bind { buffer, offset: 0, size: None }
    }
}

impl Bind<'_> {
    pub fn resource(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: self.buffer, offset: self.offset, size: self.size })
    }
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
        GpuTensor { buffer, offset: 0, len }
    }

    /// `len` words of this tensor from word `offset`, as a tensor of its own (a place in an
    /// arena). The caller aligns `offset` to the adapter's `min_storage_buffer_offset_alignment`.
    pub fn slice(&self, offset: usize, len: usize) -> GpuTensor {
        assert!(offset + len <= self.len, "slice [{offset}, +{len}) of {} words", self.len);
        GpuTensor { buffer: self.buffer.clone(), offset: self.offset + offset as u64 * 4, len }
    }

    /// The tensor's range, for a kernel's binding. A zero-length tensor binds one word.
    pub fn bind(&self) -> Bind<'_> {
        let size = std::num::NonZeroU64::new(self.len.max(1) as u64 * 4);
        Bind { buffer: &self.buffer, offset: self.offset, size }
    }

    /// Records a copy of `bytes` bytes from the tensor's start into `dst` at `dst_offset`.
    pub fn copy_out(&self, encoder: &mut wgpu::CommandEncoder, dst: &wgpu::Buffer, dst_offset: u64, bytes: u64) {
        assert!(bytes <= self.len as u64 * 4, "copy of {bytes} bytes out of {} words", self.len);
        encoder.copy_buffer_to_buffer(&self.buffer, self.offset, dst, dst_offset, bytes);
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
        GpuTensor { buffer, offset: 0, len }
    }

    pub fn write_f32(&self, gpu: &Gpu, data: &[f32]) {
        assert!(data.len() <= self.len.max(1), "write of {} words into {}", data.len(), self.len);
        gpu.queue.write_buffer(&self.buffer, self.offset, bytemuck::cast_slice(data));
    }

    pub fn write_u32(&self, gpu: &Gpu, data: &[u32]) {
        assert!(data.len() <= self.len.max(1), "write of {} words into {}", data.len(), self.len);
        gpu.queue.write_buffer(&self.buffer, self.offset, bytemuck::cast_slice(data));
    }

    /// Copies the whole tensor to the CPU. Sync point: waits for all submitted work.
    pub async fn read_f32(&self, gpu: &Gpu) -> Result<Vec<f32>, String> {
        self.read_first_f32(gpu, self.len).await
    }

    /// Copies the first `words` words to the CPU. Sync point: waits for all submitted work.
    pub async fn read_first_f32(&self, gpu: &Gpu, words: usize) -> Result<Vec<f32>, String> {
        assert!(words <= self.len, "read of {words} words out of {}", self.len);
        let bytes = read_bytes(gpu, &self.buffer, self.offset, (words * 4) as u64).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Records zeroing the tensor's range.
    pub fn clear(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.clear_buffer(&self.buffer, self.offset, Some(self.len.max(1) as u64 * 4));
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
