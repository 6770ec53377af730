//! Every WGSL file in the shader index parses and validates with naga, and every file in
//! shaders/ is in the index: no GPU needed.

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
