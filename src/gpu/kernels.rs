//! The one shader index: every WGSL file, every entry point, compiled once into pipelines.
//!
//! A `Kernel` names an entry point; its WGSL file is named after the CPU twin it mirrors
//! (`shaders/layernorm_forward.wgsl` ~ `cpu::layernorm_forward`). Bindings follow one rule:
//! binding 0 is the kernel's `Params` uniform, then the buffers in the CPU twin's argument order.

use super::tensor::{uniform, Bind, GpuTensor};
use super::variants::{KernelOptions, MatmulVariant};
use super::Gpu;

macro_rules! kernels {
    ($($variant:ident => $name:literal, $group:literal;)*) => {
        /// One compute kernel: the file `shaders/NAME.wgsl` and its entry point `NAME`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Kernel { $($variant),* }

        impl Kernel {
            pub const ALL: &'static [Kernel] = &[$(Kernel::$variant),*];
            /// The kernel's name: its WGSL file (without `.wgsl`) and its entry point.
            pub fn name(self) -> &'static str { match self { $(Kernel::$variant => $name),* } }
            /// Invocations per workgroup, as its `@workgroup_size` says (a test checks they
            /// agree): what `Grid::Threads` divides by.
            pub fn group_size(self) -> u32 { match self { $(Kernel::$variant => $group),* } }
        }

        /// Every WGSL file with its source. Tests walk this list to validate each with naga.
        pub const SHADERS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../shaders/", $name, ".wgsl")))),*
        ];
    };
}

kernels! {
    EncoderForward => "encoder_forward", 256;
    EncoderBackwardWte => "encoder_backward_wte", 256;
    EncoderBackwardWpe => "encoder_backward_wpe", 256;
    LayernormForward => "layernorm_forward", 64;
    LayernormBackwardDinp => "layernorm_backward_dinp", 64;
    LayernormBackwardDparams => "layernorm_backward_dparams", 256;
    LayernormForwardRows => "layernorm_forward_rows", 64;
    LayernormBackwardDinpRows => "layernorm_backward_dinp_rows", 64;
    LayernormForwardSubgroup => "layernorm_forward_subgroup", 64;
    LayernormBackwardDinpSubgroup => "layernorm_backward_dinp_subgroup", 64;
    Matmul => "matmul", 256;
    MatmulTiled => "matmul_tiled", 128;
    MatmulUnrolled => "matmul_unrolled", 256;
    MatmulNarrow => "matmul_narrow", 64;
    MatmulSplitSum => "matmul_split_sum", 256;
    MatmulBackwardBias => "matmul_backward_bias", 256;
    AttentionForward => "attention_forward", 64;
    AttentionBackwardDpreatt => "attention_backward_dpreatt", 64;
    AttentionBackwardDqkv => "attention_backward_dqkv", 64;
    AttentionForwardFlash => "attention_forward_flash", 64;
    AttentionBackwardDq => "attention_backward_dq", 64;
    AttentionBackwardDkv => "attention_backward_dkv", 64;
    GeluForward => "gelu_forward", 256;
    GeluBackward => "gelu_backward", 256;
    ClassifierStats => "classifier_stats", 64;
    ClassifierStatsRows => "classifier_stats_rows", 64;
    ClassifierStatsSubgroup => "classifier_stats_subgroup", 64;
    ClassifierLoss => "classifier_loss", 256;
    ClassifierBackward => "classifier_backward", 256;
    GradNormPartial => "grad_norm_partial", 256;
    GradNormFinalize => "grad_norm_finalize", 256;
    AdamwUpdate => "adamw_update", 256;
    DecodeEmbed => "decode_embed", 64;
    KvAppend => "kv_append", 64;
    AttentionDecode => "attention_decode", 64;
    KvStoreRows => "kv_store_rows", 64;
}

impl Kernel {
    pub fn source(self) -> &'static str {
        SHADERS[self as usize].1
    }

    /// Whether native builds may compile this kernel without wgpu's runtime bounds checks:
    /// kernels whose every index is guarded by their own tests of the sizes in `Params`, and
    /// which the GPU-vs-CPU tests run on awkward shapes. The decoding kernels, which index by
    /// a cursor the GPU holds, keep their checks.
    pub fn trusted(self) -> bool {
        !matches!(self, Kernel::DecodeEmbed | Kernel::KvAppend | Kernel::AttentionDecode | Kernel::KvStoreRows)
    }
}

/// How many workgroups a dispatch launches, said once per kind of kernel.
#[derive(Clone, Copy, Debug)]
pub enum Grid {
    /// One invocation per item, `group_size` items per workgroup, folded into x and y (see
    /// `grid_1d`) for kernels that recover a flat index.
    Threads(usize),
    /// One workgroup per item (a row, a column block), folded likewise.
    Groups(usize),
    /// An explicit grid (tiled kernels).
    Tiles([u32; 3]),
}

impl Grid {
    fn workgroups(self, kernel: Kernel) -> [u32; 3] {
        match self {
            Grid::Threads(n) => grid_1d(n.div_ceil(kernel.group_size() as usize)),
            Grid::Groups(n) => grid_1d(n),
            Grid::Tiles(g) => g,
        }
    }
}

/// Compiled pipelines by (entry point, source, checked), and how many were compiled.
#[derive(Default)]
pub(crate) struct PipelineCache {
    pipelines: std::cell::RefCell<std::collections::HashMap<(&'static str, String, bool), wgpu::ComputePipeline>>,
    pub compiles: std::cell::Cell<usize>,
}

/// A kernel's pipeline with some constants rewritten: (kernel, constants, pipeline).
type Specialised = (Kernel, Vec<(&'static str, u32)>, wgpu::ComputePipeline);

/// All compute pipelines of one set of options, each compiled on first use (a model compiles
/// only the kernels it records, and start-up does not wait for the rest), or taken from the
/// device's cache where another `Kernels` compiled the same source (the trial's winners: on
/// SwiftShader the page's first step after its trial came 0.6-2.4 s sooner, BENCHMARKS.md).
pub struct Kernels {
    device: wgpu::Device,
    compiled: std::rc::Rc<PipelineCache>,
    pipelines: Vec<std::cell::OnceCell<wgpu::ComputePipeline>>,
    /// Pipelines of kernels with constants rewritten (see `dispatch_specialised`), by kernel
    /// and constants.
    specialised: std::cell::RefCell<Vec<Specialised>>,
    pub options: KernelOptions,
}

impl Kernels {
    /// The pipelines, with the default options.
    pub fn new(gpu: &Gpu) -> Kernels {
        Kernels::with(gpu, KernelOptions::default())
    }

    /// The pipelines, built as `options` says.
    pub fn with(gpu: &Gpu, options: KernelOptions) -> Kernels {
        let pipelines = Kernel::ALL.iter().map(|_| Default::default()).collect();
        Kernels {
            device: gpu.device.clone(),
            compiled: gpu.compiled.clone(),
            pipelines,
            specialised: Default::default(),
            options,
        }
    }

    /// The kernel's pipeline, compiled now if this is its first use.
    pub fn pipeline(&self, k: Kernel) -> &wgpu::ComputePipeline {
        self.pipelines[k as usize].get_or_init(|| self.compile(k))
    }

    fn compile(&self, k: Kernel) -> wgpu::ComputePipeline {
        // Tiled variants are dispatched specialised (see `matmul_launch`); the plain pipeline
        // is the default tile.
        let source = match k {
            Kernel::MatmulTiled => Some(MatmulVariant::DEFAULT.source()),
            _ => None,
        };
        self.compile_source(k, source.map_or(k.source().into(), Into::into))
    }

    fn compile_source(&self, k: Kernel, source: std::borrow::Cow<'static, str>) -> wgpu::ComputePipeline {
        let key = (k.name(), source.to_string(), self.options.checked);
        if let Some(p) = self.compiled.pipelines.borrow().get(&key) {
            return p.clone();
        }
        let pipeline = self.compile_new(k, source);
        self.compiled.compiles.set(self.compiled.compiles.get() + 1);
        self.compiled.pipelines.borrow_mut().insert(key, pipeline.clone());
        pipeline
    }

    fn compile_new(&self, k: Kernel, source: std::borrow::Cow<'static, str>) -> wgpu::ComputePipeline {
        let desc = wgpu::ShaderModuleDescriptor { label: Some(k.name()), source: wgpu::ShaderSource::Wgsl(source) };
        let module = if k.trusted() && !self.options.checked && !cfg!(target_arch = "wasm32") {
            // SAFETY: a trusted kernel guards every index with the sizes its `Params` gives, and
            // the GPU-vs-CPU tests run each on awkward shapes (see `Kernel::trusted`).
            unsafe { self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        } else {
            self.device.create_shader_module(desc)
        };
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.name()),
            layout: None,
            module: &module,
            entry_point: Some(k.name()),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    /// The variant that computes out (M, N) = op(A) @ op(B) with a shared dimension K, and
    /// its grid.
    pub fn matmul_launch(&self, m: u32, n: u32, k: u32) -> (MatmulVariant, Grid) {
        use super::variants::{LARGE_MATMUL_WORK, SMALL_MATMUL_WORK};
        let work = (m as u64) * (n as u64) * (k as u64);
        let v = match work {
            w if w < SMALL_MATMUL_WORK => self.options.matmul_small,
            w if w < LARGE_MATMUL_WORK => self.options.matmul,
            _ => self.options.matmul_large,
        };
        let (bm, bn) = v.tile();
        (v, Grid::Tiles([n.div_ceil(bn), m.div_ceil(bm), 1]))
    }

    /// Builds one dispatch: the kernel's `Params` uniform from `params` (a `#[repr(C)]` struct
    /// mirroring the WGSL one, see `super::params`), then `buffers` bound from binding 1 on.
    /// Done once, at build time, never per step.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        gpu: &Gpu,
        kernel: Kernel,
        params: &P,
        buffers: &[Bind<'_>],
        grid: Grid,
    ) -> Dispatch {
        self.dispatch_on(gpu, kernel, self.pipeline(kernel).clone(), params, buffers, grid)
    }

    /// `dispatch` of the kernel with some of its `const`s rewritten (a head size, say), so that
    /// its loops have the bounds the shapes need and compilers can unroll them. Each set of
    /// constants is compiled once.
    pub fn dispatch_specialised<P: bytemuck::Pod>(
        &self,
        gpu: &Gpu,
        kernel: Kernel,
        consts: &[(&'static str, u32)],
        params: &P,
        buffers: &[Bind<'_>],
        grid: Grid,
    ) -> Dispatch {
        if consts.is_empty() {
            return self.dispatch(gpu, kernel, params, buffers, grid);
        }
        let found = self.specialised.borrow().iter().find(|e| e.0 == kernel && e.1 == consts).map(|e| e.2.clone());
        let pipeline = found.unwrap_or_else(|| {
            let source = super::variants::specialise(kernel, consts);
            let pipeline = self.compile_source(kernel, source.into());
            self.specialised.borrow_mut().push((kernel, consts.to_vec(), pipeline.clone()));
            pipeline
        });
        self.dispatch_on(gpu, kernel, pipeline, params, buffers, grid)
    }

    fn dispatch_on<P: bytemuck::Pod>(
        &self,
        gpu: &Gpu,
        kernel: Kernel,
        pipeline: wgpu::ComputePipeline,
        params: &P,
        buffers: &[Bind<'_>],
        grid: Grid,
    ) -> Dispatch {
        let workgroups = grid.workgroups(kernel);
        let params_buffer =
            uniform(gpu, kernel.name(), &bytemuck::pod_collect_to_vec::<u8, u32>(bytemuck::bytes_of(params)));
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params_buffer.as_entire_binding() }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.resource() });
        }
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.name()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Dispatch { kernel, pipeline, bind_group, workgroups }
    }
}

/// A recorded kernel launch: pipeline, bindings and grid, replayed as often as needed.
pub struct Dispatch {
    pub kernel: Kernel,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

/// An ordered list of dispatches (a forward pass, a backward pass, an optimiser step) and the
/// buffers it needs zeroed before it runs.
#[derive(Default)]
pub struct Program {
    pub dispatches: Vec<Dispatch>,
    pub clears: Vec<GpuTensor>,
}

impl Program {
    pub fn push(&mut self, d: Dispatch) {
        self.dispatches.push(d);
    }

    /// Zeroes `tensor` before each run of this program (for kernels that add into it).
    pub fn clear_first(&mut self, tensor: &GpuTensor) {
        self.clears.push(tensor.clone());
    }

    /// Records this program into `encoder`: its clears, then one compute pass.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        for t in &self.clears {
            t.clear(encoder);
        }
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("kiln"), timestamp_writes: None });
        self.record(&mut pass);
    }

    /// Records every dispatch into `pass`, in order. WebGPU orders storage writes between
    /// dispatches of one pass, so one pass can hold a whole training step.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.dispatches {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
        }
    }
}

/// Largest number of workgroups along one grid dimension that every WebGPU device accepts.
pub const MAX_GROUPS_PER_DIM: u32 = 65535;

/// A grid of `groups` workgroups folded into x and y; shaders recover the flat index as
/// `wid.x + wid.y * nwg.x` and skip the overhang.
pub fn grid_1d(groups: usize) -> [u32; 3] {
    let groups = groups.max(1) as u32;
    let x = groups.min(MAX_GROUPS_PER_DIM);
    [x, groups.div_ceil(x), 1]
}

impl Program {
    /// Records this program alone into one encoder and submits it (tests and one-off work).
    pub fn submit(&self, gpu: &Gpu) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        self.encode(&mut encoder);
        gpu.queue.submit([encoder.finish()]);
    }
}
