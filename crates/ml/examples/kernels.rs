//! Micro-benchmark of `ml::kernels::linear` (f32 and bf16 weights) against
//! candle's matmul (`x.matmul(&w.t())`, what the serving forward used before)
//! on the shapes of the 15.7M bench model, alternating, medians.
//!
//! `cargo run --release -p ml --example kernels [-- --reps N] [--shape INxOUT] [--no-bf16] [--dot]`

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use ml::kernels::{self, Weights};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    println!(
        "ml::kernels::linear vs candle matmul; kernels: {}; {} threads; median of {reps}",
        kernels::describe(),
        rayon::current_num_threads()
    );
    println!(
        "{:>5} {:>11} {:>11} {:>11} {:>11} {:>8} {:>8} {:>9}",
        "m", "in×out", "candle µs", "f32 µs", "bf16 µs", "f32 ×", "bf16 ×", "f32 GB/s"
    );
    let dev = Device::Cpu;
    let shapes: Vec<(usize, usize)> = match args.iter().position(|a| a == "--shape") {
        Some(i) => {
            let s = args.get(i + 1).ok_or("--shape INxOUT")?;
            let (a, b) = s.split_once('x').ok_or("--shape INxOUT")?;
            vec![(a.parse()?, b.parse()?)]
        }
        None => vec![(384, 1152), (384, 1024), (1024, 384), (384, 8192)],
    };
    let with_bf16 = !args.iter().any(|a| a == "--no-bf16");
    for (k, n) in shapes {
        let w = Tensor::randn(0f32, 0.02, (n, k), &dev)?;
        let wv: Vec<f32> = w.flatten_all()?.to_vec1()?;
        let wb: Vec<half::bf16> = wv.iter().map(|&x| half::bf16::from_f32(x)).collect();
        let _ = DType::BF16;
        for m in [1usize, 8, 32, 1024] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let xv: Vec<f32> = x.flatten_all()?.to_vec1()?;
            let mut y = vec![0.0f32; m * n];
            let (mut tc, mut tf, mut tb) = (vec![], vec![], vec![]);
            let wt = w.t()?;
            for _ in 0..reps {
                let t = Instant::now();
                let r = x.matmul(&wt)?;
                std::hint::black_box(&r);
                tc.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                kernels::linear(&xv, Weights::F32(&wv), k, &mut y)?;
                tf.push(t.elapsed().as_secs_f64());
                if with_bf16 {
                    let t = Instant::now();
                    kernels::linear(&xv, Weights::Bf16(&wb), k, &mut y)?;
                    tb.push(t.elapsed().as_secs_f64());
                } else {
                    tb.push(f64::NAN);
                }
            }
            if m == 1 && args.iter().any(|a| a == "--dot") {
                // Interleaved: one dot per output on this thread, and the kernel.
                let (mut td, mut tk) = (vec![], vec![]);
                for _ in 0..reps {
                    let t = Instant::now();
                    for (j, yv) in y.iter_mut().enumerate() {
                        *yv = kernels::dot(&xv, &wv[j * k..(j + 1) * k]);
                    }
                    td.push(t.elapsed().as_secs_f64());
                    let t = Instant::now();
                    kernels::linear(&xv, Weights::F32(&wv), k, &mut y)?;
                    tk.push(t.elapsed().as_secs_f64());
                }
                println!(
                    "  interleaved: one dot per output on this thread {:.1} µs, kernel {:.1} µs",
                    median(&mut td) * 1e6,
                    median(&mut tk) * 1e6
                );
            }
            let (c, f, b) = (median(&mut tc), median(&mut tf), median(&mut tb));
            println!(
                "{m:>5} {:>11} {:>11.1} {:>11.1} {:>11.1} {:>7.2}× {:>7.2}× {:>9.1}",
                format!("{k}×{n}"),
                c * 1e6,
                f * 1e6,
                b * 1e6,
                c / f,
                c / b,
                (n * k * 4) as f64 / f / 1e9
            );
        }
    }
    Ok(())
}
