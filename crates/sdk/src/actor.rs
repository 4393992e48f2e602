//! Actor handles: invocation (spec §2.2) and actor state (spec §2.4).

use crate::client::{
    decode, encode_path, expect_success, parse_actor, Client, Promise, Response, KAR_JSON,
};
use crate::error::{Error, Result};
use crate::held::{HeldWrites, Known};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, PRAGMA};
use http::Method;
use kar_protocol::paths::{encode_query_value, encode_segment};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A handle on one actor instance (type, id). Cheap to clone; nothing is sent until a
/// method is used.
///
/// A handle made inside an actor method by [`crate::Context::actor`] carries that
/// method's session, so its calls re-enter actors held by the same flow (A→B→A does
/// not deadlock). A handle from [`Client::actor`] has no session: each call starts a
/// new flow.
///
/// ```no_run
/// # async fn demo(client: kar_sdk::Client) -> kar_sdk::Result<()> {
/// let account = client.actor("Account", "alice");
/// let balance: i64 = account.call("deposit", (100,)).await?;
/// account.tell("audit", ()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ActorHandle {
    client: Client,
    actor_type: String,
    id: String,
    session: Option<String>,
}

/// Counts of a multi-element state update (spec §2.4): fields actually removed, and
/// fields newly created (updates of existing fields are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateCounts {
    /// Fields removed.
    pub removed: u64,
    /// Fields newly created.
    pub added: u64,
}

impl ActorHandle {
    /// The client the handle sends through.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn new(
        client: Client,
        actor_type: &str,
        id: &str,
        session: Option<String>,
    ) -> ActorHandle {
        ActorHandle {
            client,
            actor_type: actor_type.to_string(),
            id: id.to_string(),
            session,
        }
    }

    /// The actor type.
    pub fn actor_type(&self) -> &str {
        &self.actor_type
    }

    /// The actor id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session (`<flow>:<request>`) its calls carry, if any.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// `/kar/v1/actor/{type}/{id}`
    pub(crate) fn base(&self) -> String {
        actor_base(&self.actor_type, &self.id)
    }

    /// Calls `method` with `args` and waits for its result (decoded into `T`; a method
    /// that returned nothing gives `null`, so `T = ()` fits). `args` must encode as a
    /// JSON array: a tuple (`(1, "x")`, `(x,)`), a `Vec`, or `json!([...])`; `()` means
    /// no arguments. A method that failed gives [`Error::Failed`]; an unknown method
    /// [`Error::Status`] 404.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, args: impl Serialize) -> Result<T> {
        self.invoke(method, args, None, self.session.as_deref())
            .await
            .and_then(parse_actor)
    }

    /// Like [`ActorHandle::call`], in the flow of `session` (`<flow>:<request>`, as an
    /// actor method receives it): a re-entrant call that may enter actors that flow
    /// holds.
    pub async fn call_in_session<T: DeserializeOwned>(
        &self,
        session: &str,
        method: &str,
        args: impl Serialize,
    ) -> Result<T> {
        self.invoke(method, args, None, Some(session))
            .await
            .and_then(parse_actor)
    }

    /// Sends `method(args)` without waiting for it to run (a new flow; it queues behind
    /// the instance's other work). Returns once the request is durably queued.
    pub async fn tell(&self, method: &str, args: impl Serialize) -> Result<()> {
        let response = self
            .invoke(method, args, Some("async"), self.session.as_deref())
            .await?;
        parse_actor::<Value>(response).map(drop)
    }

    /// Queues `method(args)` and returns a [`Promise`] for its result.
    pub async fn async_call(&self, method: &str, args: impl Serialize) -> Result<Promise> {
        let response = self.invoke(method, args, Some("promise"), None).await?;
        self.client.actor_promise(response)
    }

    async fn invoke(
        &self,
        method: &str,
        args: impl Serialize,
        pragma: Option<&str>,
        session: Option<&str>,
    ) -> Result<Response> {
        let body = encode_args(args)?;
        let mut path = format!("{}/call/{}", self.base(), encode_path(method));
        if let Some(session) = session {
            path.push_str("?session=");
            path.push_str(&encode_query_value(session));
        }
        let mut headers = vec![(CONTENT_TYPE, KAR_JSON)];
        if let Some(pragma) = pragma {
            headers.push((PRAGMA, pragma));
        }
        self.client.send(Method::POST, &path, &headers, body).await
    }

    /// Removes the instance: it is deactivated and its state deleted (asynchronously,
    /// in its queue). Returns once the removal is queued.
    pub async fn remove(&self) -> Result<()> {
        let response = self
            .client
            .send(Method::DELETE, &self.base(), &[], Bytes::new())
            .await?;
        expect_success(&response)
    }

    /// The actor's persistent state.
    pub fn state(&self) -> State {
        State {
            client: self.client.clone(),
            base: state_path(&self.actor_type, &self.id),
        }
    }
}

/// `/kar/v1/actor/{type}/{id}`
fn actor_base(actor_type: &str, id: &str) -> String {
    format!(
        "/kar/v1/actor/{}/{}",
        encode_segment(actor_type),
        encode_segment(id)
    )
}

/// `/kar/v1/actor/{type}/{id}/state`
pub(crate) fn state_path(actor_type: &str, id: &str) -> String {
    format!("{}/state", actor_base(actor_type, id))
}

/// The body of an actor call: a JSON array of arguments.
pub(crate) fn encode_args(args: impl Serialize) -> Result<Bytes> {
    let args = match serde_json::to_value(args).map_err(Error::Encode)? {
        Value::Null => Value::Array(Vec::new()),
        array @ Value::Array(_) => array,
        other => {
            return Err(Error::Encode(serde::ser::Error::custom(format!(
                "actor arguments must encode as a JSON array (use a tuple like (x,)), not {other}"
            ))))
        }
    };
    serde_json::to_vec(&args)
        .map(Bytes::from)
        .map_err(Error::Encode)
}

/// The persistent state of one actor: flat entries `key → JSON value` and named
/// submaps `key → (subkey → JSON value)` (spec §2.4). State operations go straight to
/// the store: no actor lock, no activation.
///
/// ```no_run
/// # async fn demo(client: kar_sdk::Client) -> kar_sdk::Result<()> {
/// let state = client.actor("Account", "alice").state();
/// state.set("balance", 100).await?;
/// let balance: Option<i64> = state.get("balance").await?;
/// state.submap("history").set("req-1", "deposit 100").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct State {
    client: Client,
    /// `/kar/v1/actor/{type}/{id}/state`
    base: String,
}

impl State {
    async fn request(&self, method: Method, suffix: &str, body: Bytes) -> Result<Response> {
        let path = format!("{}{suffix}", self.base);
        self.client.send(method, &path, &[], body).await
    }

    /// [`State::request`] without sending the held writes first: for a read of an
    /// entry they do not hold.
    async fn request_now(&self, method: Method, suffix: &str) -> Result<Response> {
        let path = format!("{}{suffix}", self.base);
        self.client.send_now(method, &path, &[], Bytes::new()).await
    }

    /// The writes held back by the running method, if this is its own instance's
    /// state and the method has not answered yet (see `held.rs`).
    fn held(&self) -> Option<&HeldWrites> {
        self.client
            .held()
            .filter(|held| held.state_path() == self.base)
    }

    /// Whether `key` exists, as the running method's held writes know it or the
    /// store says (learnt for the next time); `None` if nothing is held.
    async fn held_exists(&self, key: &str) -> Result<Option<bool>> {
        let Some(held) = self.held() else {
            return Ok(None);
        };
        match held.known(key) {
            None => Ok(None),
            Some(Known::Written(value)) => Ok(Some(value.is_some())),
            Some(Known::Exists(exists)) => Ok(Some(exists)),
            Some(Known::Unknown) => {
                let response = self.request_now(Method::HEAD, &flat(key)).await?;
                let exists = head_answer(&response)?;
                held.learn(key, exists);
                Ok(Some(exists))
            }
        }
    }

    /// Holds a write of `key` (`None`: removal) until the method answers; returns
    /// whether the entry existed, or `None` if it is not held (sent by the caller).
    async fn hold(&self, key: &str, value: Option<Bytes>) -> Result<Option<bool>> {
        let Some(existed) = self.held_exists(key).await? else {
            return Ok(None);
        };
        let held = self.held().filter(|held| held.hold(key, value));
        Ok(held.map(|_| existed))
    }

    async fn post_json<T: DeserializeOwned>(&self, suffix: &str, body: Value) -> Result<T> {
        let response = self
            .request(Method::POST, suffix, Bytes::from(body.to_string()))
            .await?;
        expect_success(&response)?;
        response.json_body()
    }

    /// The value of `key`, or `None` if it is not set.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(held) = self.held() else {
            return get_entry(self, &flat(key)).await;
        };
        let value = match held.known(key) {
            Some(Known::Written(value)) => value,
            // A held write of another entry does not change this one.
            Some(_) => {
                let response = self
                    .request_now(Method::GET, &nil_on_absent(&flat(key)))
                    .await?;
                let value = entry_value(response)?;
                held.learn(key, value.is_some());
                value
            }
            None => return get_entry(self, &flat(key)).await,
        };
        value.map(|value| decode_bytes(&value)).transpose()
    }

    /// Sets `key` to `value`. Returns `true` if the entry is new.
    ///
    /// Inside an actor method, the write of the instance's own state is held back
    /// and committed with the method's result (see [`crate::Context::state`]).
    pub async fn set(&self, key: &str, value: impl Serialize) -> Result<bool> {
        if self.held().is_some() {
            let value = serde_json::to_vec(&value).map_err(Error::Encode)?;
            if let Some(existed) = self.hold(key, Some(value.into())).await? {
                return Ok(!existed);
            }
        }
        set_entry(self, &flat(key), value).await
    }

    /// Whether `key` is set.
    pub async fn contains(&self, key: &str) -> Result<bool> {
        match self.held_exists(key).await? {
            Some(exists) => Ok(exists),
            None => contains_entry(self, &flat(key)).await,
        }
    }

    /// Removes `key`. Returns `true` if it was set.
    ///
    /// Inside an actor method, like [`State::set`], held back until its result.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        match self.hold(key, None).await? {
            Some(existed) => Ok(existed),
            None => remove_entry(self, &flat(key)).await,
        }
    }

    /// All state: flat keys → value and submap names → object of subkey → value.
    pub async fn get_all(&self) -> Result<Map<String, Value>> {
        let response = self.request(Method::GET, "", Bytes::new()).await?;
        expect_success(&response)?;
        response.json_body()
    }

    /// Sets several flat entries at once (atomically). Returns how many were new.
    pub async fn set_multiple(&self, entries: impl Serialize) -> Result<u64> {
        let entries = serde_json::to_value(entries).map_err(Error::Encode)?;
        let counts: UpdateCounts = self.post_json("", json!({ "updates": entries })).await?;
        Ok(counts.added)
    }

    /// Removes several flat entries at once (atomically). Returns how many were set.
    pub async fn remove_some(&self, keys: &[&str]) -> Result<u64> {
        let counts: UpdateCounts = self.post_json("", json!({ "removals": keys })).await?;
        Ok(counts.removed)
    }

    /// Removes all state (flat entries and submaps). Returns `true` if there was any.
    pub async fn remove_all(&self) -> Result<bool> {
        let response = self.request(Method::DELETE, "", Bytes::new()).await?;
        one_or_zero(response)
    }

    /// A multi-element update, applied atomically (removals first): `changes` is an
    /// object with any of `removals` (`[key]`), `submapremovals` (`{map: [subkey]}`),
    /// `updates` (`{key: value}`), `submapupdates` (`{map: {subkey: value}}`).
    ///
    /// ```no_run
    /// # async fn demo(state: kar_sdk::State) -> kar_sdk::Result<()> {
    /// let counts = state
    ///     .update(serde_json::json!({"removals": ["pending"], "updates": {"balance": 90}}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn update(&self, changes: impl Serialize) -> Result<UpdateCounts> {
        let changes = serde_json::to_value(changes).map_err(Error::Encode)?;
        self.post_json("", changes).await
    }

    /// The submap `name`.
    pub fn submap(&self, name: &str) -> Submap {
        Submap {
            state: self.clone(),
            name: name.to_string(),
        }
    }
}

/// One named submap of an actor's state (spec §2.4).
#[derive(Clone, Debug)]
pub struct Submap {
    state: State,
    name: String,
}

impl Submap {
    fn entry(&self, subkey: &str) -> String {
        format!("/{}/{}", encode_segment(&self.name), encode_segment(subkey))
    }

    fn map(&self) -> String {
        format!("/{}", encode_segment(&self.name))
    }

    /// The value of `subkey`, or `None` if it is not set.
    pub async fn get<T: DeserializeOwned>(&self, subkey: &str) -> Result<Option<T>> {
        get_entry(&self.state, &self.entry(subkey)).await
    }

    /// Sets `subkey` to `value`. Returns `true` if the entry is new.
    pub async fn set(&self, subkey: &str, value: impl Serialize) -> Result<bool> {
        set_entry(&self.state, &self.entry(subkey), value).await
    }

    /// Whether `subkey` is set.
    pub async fn contains(&self, subkey: &str) -> Result<bool> {
        contains_entry(&self.state, &self.entry(subkey)).await
    }

    /// Removes `subkey`. Returns `true` if it was set.
    pub async fn remove(&self, subkey: &str) -> Result<bool> {
        remove_entry(&self.state, &self.entry(subkey)).await
    }

    /// All entries: subkey → value.
    pub async fn get_all(&self) -> Result<Map<String, Value>> {
        self.state
            .post_json(&self.map(), json!({"op": "get"}))
            .await
    }

    /// The subkeys, in insertion order.
    pub async fn keys(&self) -> Result<Vec<String>> {
        self.state
            .post_json(&self.map(), json!({"op": "keys"}))
            .await
    }

    /// The number of entries.
    pub async fn size(&self) -> Result<u64> {
        self.state
            .post_json(&self.map(), json!({"op": "size"}))
            .await
    }

    /// Removes every entry. Returns how many there were.
    pub async fn remove_all(&self) -> Result<u64> {
        self.state
            .post_json(&self.map(), json!({"op": "clear"}))
            .await
    }

    /// Sets several entries at once (atomically). Returns how many were new.
    pub async fn set_multiple(&self, entries: impl Serialize) -> Result<u64> {
        let entries = serde_json::to_value(entries).map_err(Error::Encode)?;
        let mut updates = Map::new();
        updates.insert(self.name.clone(), entries);
        let counts: UpdateCounts = self
            .state
            .post_json("", json!({ "submapupdates": updates }))
            .await?;
        Ok(counts.added)
    }

    /// Removes several entries at once (atomically). Returns how many were set.
    pub async fn remove_some(&self, subkeys: &[&str]) -> Result<u64> {
        let mut removals = Map::new();
        removals.insert(self.name.clone(), json!(subkeys));
        let counts: UpdateCounts = self
            .state
            .post_json("", json!({ "submapremovals": removals }))
            .await?;
        Ok(counts.removed)
    }
}

/// The suffix of flat entry `key`.
fn flat(key: &str) -> String {
    format!("/{}", encode_segment(key))
}

fn nil_on_absent(suffix: &str) -> String {
    format!("{suffix}?nilOnAbsent=true")
}

async fn get_entry<T: DeserializeOwned>(state: &State, suffix: &str) -> Result<Option<T>> {
    let response = state
        .request(Method::GET, &nil_on_absent(suffix), Bytes::new())
        .await?;
    entry_value(response)?
        .map(|value| decode_bytes(&value))
        .transpose()
}

/// The stored JSON text of an entry read with `nilOnAbsent`: a missing entry is `200`
/// with no body (a stored value is never empty: it is JSON text).
fn entry_value(response: Response) -> Result<Option<Bytes>> {
    expect_success(&response)?;
    Ok((!response.body.is_empty()).then_some(response.body))
}

fn decode_bytes<T: DeserializeOwned>(value: &[u8]) -> Result<T> {
    let value: Value = serde_json::from_slice(value).map_err(|e| Error::Decode(format!("{e}")))?;
    decode(value)
}

async fn set_entry(state: &State, suffix: &str, value: impl Serialize) -> Result<bool> {
    let body = serde_json::to_vec(&value).map_err(Error::Encode)?;
    let response = state.request(Method::PUT, suffix, body.into()).await?;
    expect_success(&response)?;
    Ok(response.status == 201)
}

async fn contains_entry(state: &State, suffix: &str) -> Result<bool> {
    let response = state.request(Method::HEAD, suffix, Bytes::new()).await?;
    head_answer(&response)
}

/// The answer of a `HEAD` on an entry: whether it exists.
fn head_answer(response: &Response) -> Result<bool> {
    match response.status {
        200 => Ok(true),
        404 => Ok(false),
        _ => expect_success(response).map(|()| false),
    }
}

async fn remove_entry(state: &State, suffix: &str) -> Result<bool> {
    let response = state.request(Method::DELETE, suffix, Bytes::new()).await?;
    one_or_zero(response)
}

/// The `1`/`0` answers of removals.
pub(crate) fn one_or_zero(response: Response) -> Result<bool> {
    expect_success(&response)?;
    match response.text_body().trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(Error::Decode(format!("expected 1 or 0, got {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_arrays() {
        assert_eq!(&encode_args(()).unwrap()[..], b"[]");
        assert_eq!(&encode_args((1, "x")).unwrap()[..], br#"[1,"x"]"#);
        assert_eq!(&encode_args((vec![1],)).unwrap()[..], b"[[1]]");
        assert!(encode_args(5).is_err());
    }
}
