//! Latency percentiles and the printed table.

use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct Figures {
    pub p50: Duration,
    pub p99: Duration,
}

impl Figures {
    pub fn from_samples(mut samples: Vec<Duration>) -> Figures {
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(index).copied().unwrap_or_default()
        };
        Figures {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

pub struct Row {
    pub system: String,
    pub workload: String,
    pub figures: Figures,
    pub rate: f64,
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Table {
    pub fn push(&mut self, system: &str, workload: &str, figures: Figures, rate: f64) {
        println!(
            "  measured {system} / {workload}: p50 {:.3} ms, p99 {:.3} ms, {rate:.0} calls/s",
            ms(figures.p50),
            ms(figures.p99)
        );
        self.rows.push(Row {
            system: system.to_string(),
            workload: workload.to_string(),
            figures,
            rate,
        });
    }

    /// Prints a Markdown table with ratios to the direct-HTTP baseline.
    pub fn print(&self, baseline_p50: Duration, baseline_rate: f64) {
        println!();
        println!("| system | workload | p50 (ms) | p99 (ms) | calls/s (64 clients) | p50 / direct | calls/s / direct |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            println!(
                "| {} | {} | {:.3} | {:.3} | {:.0} | {:.1}× | {:.2}× |",
                row.system,
                row.workload,
                ms(row.figures.p50),
                ms(row.figures.p99),
                row.rate,
                ms(row.figures.p50) / ms(baseline_p50).max(1e-9),
                row.rate / baseline_rate.max(1e-9)
            );
        }
    }
}
