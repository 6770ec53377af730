//! Task files and task scores: parsing with line-numbered errors, rows whose prompt tokens do not
//! count, the intervals and overlaps reported; and multiple-choice log-likelihoods on the GPU
//! against what `transformers` computes for the same choices of the tiny GPT-2 fixture
//! (tests/fixtures/gpt2_tiny_choices.json, made by scripts/make_choices_fixture.py).

mod common;
use kiln::gpt::{GpuWeights, Layout, IGNORE};
use kiln::task::{self, parse_examples, row_from_tokens, split_validation, Example};
use kiln::task_eval::{evaluate_task, EvalOptions};
use kiln::tokenizer::Tokenizer;
use serde_json::Value;
use std::rc::Rc;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn task_lines_parse_and_bad_ones_are_named_by_number() {
    let good = "{\"prompt\": \"Q\", \"completion\": \" a\"}\n\n{\"prompt\": \"R\", \"completion\": \" b\"}\n";
    let ex = parse_examples(good, "t.jsonl").unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[1].completion, " b");
    let mc = parse_examples("{\"prompt\": \"Q\", \"choices\": [\" x\", \" y\"], \"answer\": 1}", "m").unwrap();
    assert_eq!((mc[0].completion.as_str(), mc[0].answer), (" y", Some(1)));
    let cases = [
        ("{\"prompt\": \"Q\", \"completion\": \" a\"}\n{oops", "t line 2: not valid JSON"),
        ("{\"completion\": \" a\"}", "t line 1: no \"prompt\""),
        ("{\"prompt\": \"Q\"}", "t line 1: no \"completion\""),
        ("{\"prompt\": \"Q\", \"choices\": [], \"answer\": 0}", "t line 1: \"choices\" is empty"),
        ("{\"prompt\": \"Q\", \"choices\": [\" x\"], \"answer\": 3}", "t line 1: \"answer\" 3 is out of range"),
        ("{\"prompt\": \"Q\", \"choices\": [\" x\"]}", "t line 1: \"choices\" needs \"answer\""),
        ("[1, 2]", "t line 1: expected a JSON object"),
        ("", "t holds no examples"),
    ];
    for (text, want) in cases {
        let err = parse_examples(text, "t").unwrap_err();
        assert!(err.starts_with(want), "{text:?}: got {err:?}, want it to start with {want:?}");
    }
}

#[test]
fn rows_count_only_completion_tokens_and_truncate_prompts_from_the_left() {
    let row = row_from_tokens(&[1, 2, 3], &[7, 8], 16).unwrap();
    assert_eq!(row.inputs, vec![1, 2, 3, 7]);
    assert_eq!(row.targets, vec![IGNORE, IGNORE, 7, 8]);
    assert_eq!((row.truncated, row.counted()), (0, 2));
    // Five prompt tokens and two completion tokens in a context of 4: five tokens fit (the last
    // is no input), so three prompt tokens stay.
    let row = row_from_tokens(&[1, 2, 3, 4, 5], &[7, 8], 4).unwrap();
    assert_eq!(row.inputs, vec![3, 4, 5, 7]);
    assert_eq!(row.targets, vec![IGNORE, IGNORE, 7, 8]);
    assert_eq!(row.truncated, 2);
    assert!(row_from_tokens(&[1], &[7, 8, 9], 2).unwrap_err().contains("does not fit"));
    let (inputs, targets) = task::pad_batch(&[&row], 5);
    assert_eq!(inputs, vec![3, 4, 5, 7, 0]);
    assert_eq!(targets, vec![IGNORE, IGNORE, 7, 8, IGNORE]);
}

#[test]
fn open_answers_are_trained_to_end_with_a_newline_and_choices_are_not() {
    let tok = Tokenizer::char_level("abc xyz:.\n").unwrap();
    let open = Example { prompt: "abc:".into(), completion: " xy.".into(), choices: vec![], answer: None };
    let choice = Example {
        prompt: "abc:".into(),
        completion: " y".into(),
        choices: vec![" x".into(), " y".into()],
        answer: Some(1),
    };
    let data = task::TaskData::new(&tok, &[open, choice], &[], 32).unwrap();
    let newline = tok.encode(task::ANSWER_END).unwrap();
    let counted = |r: &task::Row| r.targets.iter().copied().filter(|&t| t != IGNORE).collect::<Vec<_>>();
    // " xy." and the newline the model learns to stop with; the choice's " y" alone.
    assert_eq!(counted(&data.train[0]), [tok.encode(" xy.").unwrap(), newline.clone()].concat());
    assert_eq!(counted(&data.train[1]), tok.encode(" y").unwrap());
}

#[test]
fn validation_split_is_seeded_and_disjoint() {
    let ex: Vec<Example> = (0..50)
        .map(|i| Example { prompt: format!("p{i}"), completion: " c".into(), choices: vec![], answer: None })
        .collect();
    let (train, val) = split_validation(ex.clone(), 7);
    assert_eq!((train.len(), val.len()), (45, 5));
    assert!(val.iter().all(|v| !train.contains(v)));
    assert_eq!(split_validation(ex.clone(), 7).1, val);
    assert_ne!(split_validation(ex, 8).1, val);
}

#[test]
fn intervals_and_overlap() {
    let (lo, hi) = task::wilson95(61, 100);
    assert!((lo - 0.5120).abs() < 1e-3 && (hi - 0.7002).abs() < 1e-3, "{lo} {hi}");
    assert_eq!(task::wilson95(0, 10).0, 0.0);
    assert!((task::token_f1("A room in the palace.", " a Room in the castle") - 0.8).abs() < 1e-9);
    assert!(task::exact_match(" The Forest.", "the forest"));
    assert_eq!(task::token_f1("", "x"), 0.0);
}

#[test]
fn choice_logprobs_match_transformers() {
    let fixture: Value =
        serde_json::from_slice(&std::fs::read(format!("{ROOT}/tests/fixtures/gpt2_tiny_choices.json")).unwrap())
            .unwrap();
    let ckpt = common::gpt2_tiny();
    let tok = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes()).unwrap();
    let mut examples = Vec::new();
    let mut want = Vec::new();
    let ids = |v: &Value| -> Vec<u32> { v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect() };
    for e in fixture["examples"].as_array().unwrap() {
        let text = serde_json::to_string(&serde_json::json!({"prompt": e["prompt"], "choices": e["choices"],
                                                             "answer": e["answer"]}))
        .unwrap();
        let ex = parse_examples(&text, "fixture").unwrap().remove(0);
        assert_eq!(tok.encode(&ex.prompt).unwrap(), ids(&e["prompt_ids"]), "prompt ids differ from transformers'");
        for (c, cid) in ex.choices.iter().zip(e["choice_ids"].as_array().unwrap()) {
            assert_eq!(tok.encode(c).unwrap(), ids(cid), "choice ids differ from transformers'");
        }
        want.push(e["logprobs"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>());
        examples.push(ex);
    }
    let Some(gpu) = common::gpu() else { return };
    // A small binding limit splits wte and chunks the vocabulary, as on a real GPT-2.
    let layout = Layout { max_buffer_bytes: 2 << 20, logits_chunk_bytes: 1 << 20 };
    let weights = Rc::new(GpuWeights::upload(&gpu, ckpt.cfg, layout, &ckpt.params).unwrap());
    let mut got = Vec::new();
    let opts = EvalOptions { batch: 4, ..EvalOptions::default() };
    let score = pollster::block_on(evaluate_task(&gpu, weights, &tok, &examples, &[], &opts, |r| {
        got.push(r.choice_logprobs.clone())
    }))
    .unwrap();
    assert_eq!(score.count, 3);
    assert!(score.truncated_examples >= 1, "the two-shot prompt is longer than 64 positions");
    for (g, w) in got.iter().zip(&want) {
        for (x, y) in g.iter().zip(w) {
            assert!((x - y).abs() <= 1e-4 * y.abs() + 1e-4, "choice log-probability {x} vs transformers' {y}");
        }
    }
    eprintln!("choice log-probabilities: kiln {got:?}\ntransformers {want:?}");
}
