//! The greeter service: `POST /helloText` (a JSON string in, text out) and
//! `POST /helloJson` (`{"name": ...}` in, `{"greetings": ...}` out).
//!
//! Run it as service `greeter` of app `hello` (see README.md):
//! `kar run -app hello -service greeter -- target/debug/hello-server`

use kar_sdk::{Response, Server};
use serde_json::{json, Value};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let server = Server::new()
        .route("POST", "/helloText", |request| async move {
            let name: String = request.json()?;
            Ok(Response::text(format!("Hello {name}")))
        })
        .route("POST", "/helloJson", |request| async move {
            let body: Value = request.json()?;
            let name = body["name"].as_str().unwrap_or("stranger");
            Response::json(&json!({ "greetings": format!("Hello {name}") }))
        });
    println!("greeter: serving until interrupted");
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("greeter: {e}");
            ExitCode::FAILURE
        }
    }
}
