//! Every WGSL file in the shader index parses and validates with naga, and every file in
//! shaders/ is in the index: no GPU needed.

use kiln::gpu::params::{params_fields, params_size};
use kiln::gpu::{Kernel, SHADERS};

#[test]
fn every_shader_validates() {
    for (name, source) in SHADERS {
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(source)));
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        validator.validate(&module).unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
        assert!(module.entry_points.iter().any(|e| e.name == *name), "{name}.wgsl has no entry point {name}");
    }
}

#[test]
fn every_shader_file_is_indexed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(Kernel::ALL.iter().any(|k| k.name() == stem), "{stem}.wgsl is not in the shader index");
    }
}

/// The Rust side of each kernel's contract agrees with its WGSL: the `Params` struct's field
/// names and size, and the workgroup size that `Grid::Threads` divides by.
#[test]
fn params_and_workgroup_sizes_match_the_shaders() {
    for &kernel in Kernel::ALL {
        let (name, source) = (kernel.name(), kernel.source());
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let entry = module.entry_points.iter().find(|e| e.name == name).unwrap();
        let size: u32 = entry.workgroup_size.iter().product();
        assert_eq!(size, kernel.group_size(), "{name}: @workgroup_size gives {size} invocations");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .unwrap_or_else(|| panic!("{name}.wgsl has no struct Params"));
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{name}: Params is not a struct") };
        let fields: Vec<&str> = members.iter().map(|m| m.name.as_deref().unwrap_or("")).collect();
        assert_eq!(fields, params_fields(kernel), "{name}: Params fields differ between WGSL and Rust");
        assert_eq!(*span as usize, params_size(kernel), "{name}: Params sizes differ between WGSL and Rust");
    }
}

/// Every matmul candidate's source (matmul_tiled.wgsl with its tile constants rewritten, or
/// matmul_unrolled.wgsl with its entry point written for the tile) validates, with and without
/// bounds tests (`WHOLE`), and really is rewritten: its workgroup size is the candidate's, and a
/// written-out entry has TM x TN / 4 vec4 multiply-adds.
#[test]
fn every_matmul_variant_validates() {
    use kiln::gpu::MatmulVariant;
    let mut unrolled = 0;
    for (v, whole) in MatmulVariant::CANDIDATES.iter().flat_map(|v| [(v, 0), (v, 1)]) {
        let Some(t) = v.shape() else { continue };
        let mut consts = v.consts();
        consts.push(("WHOLE", whole));
        let source = kiln::gpu::specialise(v.kernel(), &consts);
        assert!(source.contains(&format!("const WHOLE: u32 = {whole}u;")), "{v}: WHOLE was not rewritten");
        let module =
            naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{v}: {}", e.emit_to_string(&source)));
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        validator.validate(&module).unwrap_or_else(|e| panic!("{v}: {e:?}"));
        assert_eq!(module.entry_points[0].workgroup_size, [t.wx, t.wy, 1], "{v}: the constants were not rewritten");
        if let MatmulVariant::Unrolled(_) = v {
            assert_eq!(source.matches("= fma(").count() as u32, t.tm * t.tn / 4, "{v}: multiply-adds");
            unrolled += 1;
        }
    }
    assert!(unrolled >= 4, "only {} unrolled candidates", unrolled / 2);
}

/// matmul_unrolled.wgsl's own entry point is what `unrolled_entry` writes for its constants
/// (4 x 4), so the file shows the generated code and validates with the other shaders.
#[test]
fn the_unrolled_file_holds_its_generated_entry_point() {
    let file = kiln::gpu::Kernel::MatmulUnrolled.source();
    for (name, v) in [("TM", 4), ("TN", 4)] {
        assert!(file.contains(&format!("const {name}: u32 = {v}u;")), "matmul_unrolled.wgsl: {name} is not {v}");
    }
    let entry = &file[file.find("@compute").expect("an entry point")..];
    let written = kiln::gpu::unrolled_entry(4, 4);
    assert!(entry == written, "matmul_unrolled.wgsl's entry point differs from unrolled_entry(4, 4):\n{written}");
}

/// The flash attention kernels validate with every head size they are compiled for (a vec4
/// multiple up to 64), every count of rows an invocation `--attention-rows` takes and every
/// workgroup size `flash_invocations` gives, and the constants really are rewritten.
#[test]
fn flash_attention_validates_for_each_head_size() {
    use kiln::gpu::{AttentionRows, Kernel};
    for k in [Kernel::AttentionForwardFlash, Kernel::AttentionBackwardDq, Kernel::AttentionBackwardDkv] {
        let shapes = (4..=64).step_by(4).flat_map(|hs| (1..=AttentionRows::MAX).map(move |r| (hs, r)));
        for ((hs, rows), wg) in shapes.flat_map(|s| [16, 32, 64].map(|wg| (s, wg))) {
            let source = kiln::gpu::rewrite_consts(k.source(), &[("HS_MAX", hs), ("ROWS", rows), ("WG", wg)]);
            assert!(source.contains(&format!("const HS_MAX: u32 = {hs}u;")));
            assert!(source.contains(&format!("const ROWS: u32 = {rows}u;")));
            assert!(source.contains(&format!("const WG: u32 = {wg}u;")));
            let what = format!("{} HS_MAX {hs} ROWS {rows} WG {wg}", k.name());
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(&source)));
            let mut validator =
                naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
            validator.validate(&module).unwrap_or_else(|e| panic!("{what}: {e:?}"));
        }
    }
}

/// A variant's name reads back as the same variant (the tuning cache and `--matmul` rely on
/// it); "vec4", the written-out 16x16:4x4:16's older name, still reads; bad names are refused.
#[test]
fn matmul_variant_names_read_back() {
    use kiln::gpu::MatmulVariant;
    for v in MatmulVariant::CANDIDATES {
        assert_eq!(MatmulVariant::parse(&v.to_string()), Ok(*v), "{v}");
    }
    assert_eq!(MatmulVariant::parse("vec4").map(|v| v.to_string()), Ok("u16x16:4x4:16".to_string()));
    for bad in ["", "u", "16x16:4x4", "x16x16:4x4:16", "u16x16:4x4:0", "16x16:4x99:16", "u16x16:6x4:16"] {
        assert!(MatmulVariant::parse(bad).is_err(), "'{bad}' was read");
    }
}

/// matmul_tiled.wgsl and matmul_unrolled.wgsl differ only in their constants and entry points:
/// the parameters, bindings, tiles, loads, staging and epilogue are one text (WGSL has no
/// includes), so a fix to one cannot miss the other.
#[test]
fn the_tiled_matmuls_share_everything_but_their_entry_points() {
    use kiln::gpu::Kernel;
    let shared = |k: Kernel| {
        let s = k.source();
        s[s.find("\nstruct Params {").expect("Params")..s.find("\n@compute").expect("an entry point")].to_string()
    };
    assert!(shared(Kernel::MatmulTiled) == shared(Kernel::MatmulUnrolled), "the two matmul files' helpers differ");
}
