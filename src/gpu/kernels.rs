//! The one shader index: every WGSL file, every entry point, compiled once into pipelines.
//!
//! A `Kernel` names an entry point; its WGSL file is named after the CPU twin it mirrors
//! (`shaders/layernorm_forward.wgsl` ~ `cpu::layernorm_forward`). Bindings follow one rule:
//! binding 0 is the kernel's `Params` uniform, then the buffers in the CPU twin's argument order.

use super::{tensor::uniform, Gpu};

macro_rules! kernels {
    ($($variant:ident => $name:literal;)*) => {
        /// One compute kernel: the file `shaders/NAME.wgsl` and its entry point `NAME`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Kernel { $($variant),* }

        impl Kernel {
            pub const ALL: &'static [Kernel] = &[$(Kernel::$variant),*];
            /// The kernel's name: its WGSL file (without `.wgsl`) and its entry point.
            pub fn name(self) -> &'static str { match self { $(Kernel::$variant => $name),* } }
        }

        /// Every WGSL file with its source. Tests walk this list to validate each with naga.
        pub const SHADERS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../shaders/", $name, ".wgsl")))),*
        ];
    };
}

kernels! {
    EncoderForward => "encoder_forward";
    EncoderBackwardWte => "encoder_backward_wte";
    EncoderBackwardWpe => "encoder_backward_wpe";
    LayernormForward => "layernorm_forward";
    LayernormBackwardDinp => "layernorm_backward_dinp";
    LayernormBackwardDparams => "layernorm_backward_dparams";
    Matmul => "matmul";
    MatmulBackwardBias => "matmul_backward_bias";
    AttentionForward => "attention_forward";
    AttentionBackwardDpreatt => "attention_backward_dpreatt";
    AttentionBackwardDqkv => "attention_backward_dqkv";
    GeluForward => "gelu_forward";
    GeluBackward => "gelu_backward";
    ResidualForward => "residual_forward";
    CrossentropySoftmax => "crossentropy_softmax";
    MeanLoss => "mean_loss";
    GradNormPartial => "grad_norm_partial";
    GradNormFinalize => "grad_norm_finalize";
    AdamwUpdate => "adamw_update";
    DecodeEmbed => "decode_embed";
    KvAppend => "kv_append";
    AttentionDecode => "attention_decode";
}

impl Kernel {
    pub fn source(self) -> &'static str {
        SHADERS[self as usize].1
    }
}

/// All compute pipelines, built once per device.
pub struct Kernels {
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Kernels {
    pub fn new(gpu: &Gpu) -> Kernels {
        let pipelines = Kernel::ALL
            .iter()
            .map(|k| {
                let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(k.name()),
                    source: wgpu::ShaderSource::Wgsl(k.source().into()),
                });
                gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(k.name()),
                    layout: None,
                    module: &module,
                    entry_point: Some(k.name()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        Kernels { pipelines }
    }

    pub fn pipeline(&self, k: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[k as usize]
    }

    /// Builds one dispatch: a `Params` uniform from `params` (4-byte words: u32, or f32 bits),
    /// then `buffers` bound from binding 1 on. Done once, at build time, never per step.
    pub fn dispatch(
        &self,
        gpu: &Gpu,
        kernel: Kernel,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Dispatch {
        let params_buffer = uniform(gpu, kernel.name(), params);
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params_buffer.as_entire_binding() }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() });
        }
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.name()),
            layout: &self.pipeline(kernel).get_bind_group_layout(0),
            entries: &entries,
        });
        Dispatch { kernel, bind_group, workgroups }
    }
}

/// A recorded kernel launch: pipeline, bindings and grid, replayed as often as needed.
pub struct Dispatch {
    pub kernel: Kernel,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

/// An ordered list of dispatches: a forward pass, a backward pass, an optimiser step.
#[derive(Default)]
pub struct Program {
    pub dispatches: Vec<Dispatch>,
}

impl Program {
    pub fn push(&mut self, d: Dispatch) {
        self.dispatches.push(d);
    }

    /// Records every dispatch into `pass`, in order. WebGPU orders storage writes between
    /// dispatches of one pass, so one pass can hold a whole training step.
    pub fn record(&self, kernels: &Kernels, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.dispatches {
            pass.set_pipeline(kernels.pipeline(d.kernel));
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
    pub fn submit(&self, gpu: &Gpu, kernels: &Kernels) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record(kernels, &mut pass);
        }
        gpu.queue.submit([encoder.finish()]);
    }
}
