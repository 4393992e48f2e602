//! A client of the greeter service: calls both routes, checks the answers, prints
//! `hello: OK` and exits 0, or prints what went wrong and exits 1.
//!
//! `kar run -app hello -- target/debug/hello-client`

use kar_sdk::Client;
use serde_json::{json, Value};
use std::process::ExitCode;

async fn check() -> Result<(), String> {
    let client = Client::from_env().map_err(|e| e.to_string())?;
    let text: String = client
        .call("greeter", "helloText", "Gandalf the Grey")
        .await
        .map_err(|e| format!("helloText: {e}"))?;
    println!("helloText -> {text}");
    if text != "Hello Gandalf the Grey" {
        return Err(format!("helloText answered {text:?}"));
    }
    let answer: Value = client
        .call("greeter", "helloJson", json!({ "name": "Alan Turing" }))
        .await
        .map_err(|e| format!("helloJson: {e}"))?;
    println!("helloJson -> {answer}");
    if answer != json!({ "greetings": "Hello Alan Turing" }) {
        return Err(format!("helloJson answered {answer}"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match check().await {
        Ok(()) => {
            println!("hello: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("hello: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
