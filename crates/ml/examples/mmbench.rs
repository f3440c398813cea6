use candle_core::{Device, Tensor};
use std::time::Instant;
fn main() {
    for &(m, k, n) in &[(1024usize, 384usize, 640usize), (1024, 384, 2048), (1024, 384, 384),(1024, 384, 128), (128, 384, 8192), (256, 384, 8192), (512, 384, 8192), (1024, 384, 8192)] {
        let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let bt = b.t().unwrap();
        for _ in 0..5 { a.matmul(&bt).unwrap(); }
        let iters = 30;
        let t = Instant::now();
        for _ in 0..iters { a.matmul(&bt).unwrap(); }
        let dt = t.elapsed().as_secs_f64() / iters as f64;
        let dy = Tensor::randn(0f32, 1.0, (m, n), &Device::Cpu).unwrap();
        for _ in 0..5 { dy.matmul(&b).unwrap(); }
        let t = Instant::now();
        for _ in 0..iters { dy.matmul(&b).unwrap(); }
        let dt2 = t.elapsed().as_secs_f64() / iters as f64;
        println!("{m} {k} {n}: x·Wᵀ {:.1} GFLOP/s, dY·W {:.1} GFLOP/s", 2.0 * (m * k * n) as f64 / dt / 1e9, 2.0 * (m * k * n) as f64 / dt2 / 1e9);
    }
}
