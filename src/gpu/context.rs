//! The GPU context: one adapter, its device and queue, asked for the adapter's real limits.
//!
//! Native builds look at every Vulkan/Metal/DX12 adapter and prefer real hardware over software
//! rasterisers; the browser gets whatever `navigator.gpu` offers. Nothing here knows about models.

use std::fmt;
use std::sync::{Arc, Mutex};

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The first device loss or uncaptured GPU error, kept instead of panicking so a front end
    /// can stop cleanly and offer to resume (see `failure`).
    failure: Arc<Mutex<Option<Failure>>>,
    /// Every compute pipeline, compiled on first use and shared by all models on this device
    /// (built anew when the options change while no model holds them).
    kernels: std::cell::RefCell<Option<std::rc::Rc<super::Kernels>>>,
    /// What `kernels` is built with; set by the front end (see `set_kernel_options`).
    options: std::cell::Cell<super::KernelOptions>,
    /// Every pipeline compiled on this device, by entry point, source and bounds checks: shared
    /// by all `Kernels`, so a model reuses what the trial compiled.
    pub(crate) compiled: std::rc::Rc<super::kernels::PipelineCache>,
}

/// A device loss or GPU error, as `Gpu::failure` reports it.
struct Failure {
    what: String,
    /// A lost device, which takes the place of an earlier error (see `Gpu::new`).
    lost: bool,
}

/// What a person sees when there is no usable GPU, with what to do about it.
#[cfg(not(target_arch = "wasm32"))]
pub const NO_ADAPTER_HELP: &str = "no GPU adapter found: install a Vulkan driver (on Debian or \
Ubuntu: apt-get install mesa-vulkan-drivers, which includes the lavapipe software driver), or \
use a machine with Metal (macOS) or DX12 (Windows)";
#[cfg(target_arch = "wasm32")]
pub const NO_ADAPTER_HELP: &str = "the browser offered no WebGPU adapter";

impl Gpu {
    /// Opens the best adapter available, with its full limits and the optional features Kiln
    /// can use (timestamp queries for per-kernel timing, subgroup operations for the LayerNorm
    /// and classifier reductions).
    pub async fn new() -> Result<Gpu, String> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pick_adapter(&instance).await.ok_or_else(|| NO_ADAPTER_HELP.to_string())?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("kiln device"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| format!("the GPU adapter '{}' refused a device: {e}", info.name))?;
        let failure = Arc::new(Mutex::new(None));
        // The first fault is kept, except that a lost device replaces an error seen before it:
        // work sent to a device already lost fails validation before the loss is reported.
        let keep = |failure: &Arc<Mutex<Option<Failure>>>, what: String, lost: bool| {
            let mut slot = failure.lock().unwrap_or_else(|e| e.into_inner());
            if lost && !slot.as_ref().is_some_and(|f| f.lost) {
                *slot = Some(Failure { what, lost });
            } else {
                slot.get_or_insert(Failure { what, lost });
            }
        };
        let f = failure.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let msg = if msg.is_empty() { String::new() } else { format!(": {}", one_line(&msg)) };
            keep(&f, format!("the GPU device was lost ({reason:?}){msg}"), true)
        });
        // An uncaptured error (a validation error, running out of memory) is kept rather than
        // left to wgpu's default, a panic: the front end then ends the run with one line and the
        // last checkpoint as it was. Tests still fail loudly: every read-back after the error
        // returns it (`tensor::map_and_read`).
        let f = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e| {
            keep(&f, format!("GPU error: {}", one_line(&e.to_string())), false)
        }));
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            failure,
            kernels: Default::default(),
            options: Default::default(),
            compiled: Default::default(),
        })
    }

    /// The compiled pipelines of every kernel (compiled once per device, on first use).
    pub fn kernels(&self) -> std::rc::Rc<super::Kernels> {
        let mut kernels = self.kernels.borrow_mut();
        kernels.get_or_insert_with(|| std::rc::Rc::new(super::Kernels::with(self, self.options.get()))).clone()
    }

    /// Pipelines compiled on this device so far (each source and checks once, whichever
    /// `Kernels` asked first).
    pub fn pipelines_compiled(&self) -> usize {
        self.compiled.compiles.get()
    }

    /// Chooses the kernel variants and checks every model on this device will use from now on.
    /// Refused while a model built with other options is alive (it would disagree with those
    /// built after); once every such model is dropped the new options take over (the page
    /// compiles its default run's pipelines before its trial, then uses the trial's winners).
    /// Pipelines compiled under the old options stay in the device's cache.
    pub fn set_kernel_options(&self, options: super::KernelOptions) -> Result<(), String> {
        for v in [options.matmul, options.matmul_small, options.matmul_large] {
            if !v.fits(&self.limits) {
                return Err(format!("matmul variant {v} does not fit this adapter's workgroup limits"));
            }
        }
        if !options.norm.available(self.features) {
            return Err(format!(
                "layernorm variant {} needs subgroup operations, which this adapter lacks",
                options.norm
            ));
        }
        let mut kernels = self.kernels.borrow_mut();
        match kernels.as_ref() {
            Some(k) if k.options == options => {}
            Some(k) if std::rc::Rc::strong_count(k) > 1 => {
                return Err("kernel options cannot change while a model built with other ones is alive".into());
            }
            _ => *kernels = None,
        }
        self.options.set(options);
        Ok(())
    }

    /// The device loss or GPU error seen so far, if any. Once set, results computed since are
    /// not to be trusted and the device should be replaced.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|f| f.what.clone())
    }

    /// The storage Kiln holds on the device now: (buffers, bytes), where the backend counts them
    /// (natively on Vulkan, Metal and DX12; never in the browser). For the step events, to show
    /// that a long run's GPU memory does not grow.
    pub fn buffers_held(&self) -> Option<(u64, u64)> {
        let hal = self.device.get_internal_counters().hal;
        let (buffers, bytes) = (hal.buffers.read(), hal.buffer_memory.read());
        (buffers > 0).then_some((buffers as u64, bytes as u64))
    }

    /// True for CPU-backed adapters such as lavapipe or SwiftShader: fine for correctness, slow.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Waits until all submitted work is done. A sync point: call it only where a result is
    /// needed on the CPU.
    pub fn wait(&self) {
        // A device lost while waiting (a driver reset, not `destroy()`) makes wgpu panic ("Error
        // in Device::poll") after its lost callback has kept the failure, which every read-back
        // then reports: the panic is caught here so the front end can end the run in one line.
        #[cfg(not(target_arch = "wasm32"))]
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }));
        #[cfg(target_arch = "wasm32")]
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }

    /// The message of wgpu's panic on a device lost during `wait`, for a front end's panic hook
    /// to leave unprinted (the failure is reported as an error instead).
    pub const LOST_WHILE_WAITING: &'static str = "Error in Device::poll";
}

impl fmt::Display for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Browsers may withhold the adapter's name.
        let name = if self.info.name.is_empty() { "unnamed adapter" } else { &self.info.name };
        write!(f, "{name} ({:?}, {:?}", self.info.backend, self.info.device_type)?;
        if self.is_software() {
            write!(f, ", software")?;
        }
        write!(f, ")")
    }
}

/// wgpu's errors span lines ("Caused by: ..."); a front end ends a run with one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(not(target_arch = "wasm32"))]
async fn pick_adapter(instance: &wgpu::Instance) -> Option<wgpu::Adapter> {
    // Only the modern backends: GL adapters lack compute features Kiln needs, and on Linux a GL
    // adapter on llvmpipe would otherwise compete with lavapipe.
    let adapters = instance.enumerate_adapters(wgpu::Backends::PRIMARY).await;
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    adapters.into_iter().min_by_key(rank)
}

#[cfg(target_arch = "wasm32")]
async fn pick_adapter(instance: &wgpu::Instance) -> Option<wgpu::Adapter> {
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        })
        .await
        .ok()
}
