//! On-chain records by id: a model (`/explorer/models/m{id}`) and a Datanet
//! (`/explorer/datanets/d{id}`), each as its module's own view returns it,
//! with the names of its interface. (The Datanets and Models sections will
//! give them richer pages; these show the record itself.)

use alloy_dyn_abi::FunctionExt;
use alloy_sol_types::SolCall;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use primitives::abi::{IDatanets, IModels};
use primitives::system::Module;

use super::{fields, path_param};
use crate::Web;
use crate::decode::{self, DecodedError, Field, Value};
use crate::page::{Page, Section, WebError, render};
use crate::query;
use crate::view::ChainView;

/// What a view of module `m` returns, named after its interface's outputs
/// (a single struct is opened into its members); `Ok(Err(error))` when the
/// module refuses (an unknown id), with its custom error when it decodes.
pub fn read(
    v: &ChainView,
    m: Module,
    call: &impl SolCall,
) -> Result<Result<Vec<Field>, Option<DecodedError>>, WebError> {
    let data = call.abi_encode();
    let f = decode::function(m, &data).ok_or_else(|| WebError::unavailable("a view missing from its interface"))?;
    let out = match v.call_raw(m, &data)? {
        Ok(out) => out,
        Err(revert) => return Ok(Err(decode::decode_error(Some(m), &revert))),
    };
    let vals = f.abi_decode_output(&out).map_err(|e| WebError::unavailable(format!("{}: {e}", f.signature())))?;
    let mut fs = decode::fields(&f.outputs, vals);
    if let [one] = fs.as_mut_slice()
        && one.name.starts_with('#')
    {
        one.name = f.name.clone();
    }
    if let [Field { value: Value::Struct(members), .. }] = fs.as_mut_slice() {
        fs = std::mem::take(members);
    }
    Ok(Ok(fs))
}

/// The record, or a 404 naming the module's refusal.
fn record(v: &ChainView, m: Module, call: &impl SolCall, what: &str) -> Result<Vec<Field>, WebError> {
    read(v, m, call)?.map_err(|e| {
        let why = e.map(|e| format!(" ({})", e.name)).unwrap_or_default();
        WebError::not_found(format!("no {what} on chain{why}"))
    })
}

pub async fn model_handler(State(web): State<Web>, id: Result<Path<String>, PathRejection>) -> Response {
    render(web, move |v| {
        let id = query::model_id(&path_param(id)?)?;
        let rec = record(v, Module::Models, &IModels::modelCall { id }, &format!("model m{id}"))?;
        let body = html! {
            p { "The model's record as the models system contract holds it." }
            (fields(&rec))
        };
        Ok(Page::new(format!("Model m{id}"), Section::Explorer, body))
    })
    .await
}

pub async fn datanet_handler(State(web): State<Web>, id: Result<Path<String>, PathRejection>) -> Response {
    render(web, move |v| {
        let id = query::datanet_id(&path_param(id)?)?;
        let rec = record(v, Module::Datanets, &IDatanets::datanetCall { id }, &format!("Datanet d{id}"))?;
        let count = record(v, Module::Datanets, &IDatanets::contributionCountCall { id }, "contribution count")?;
        let curators = record(v, Module::Datanets, &IDatanets::curatorsCall { id }, "curator list")?;
        let body = html! {
            p {
                "The Datanet's record as the datanets system contract holds it. Its page, with versions and contributions: "
                a href=(crate::datanets::href(id)) { "Datanet d" (id) } "."
            }
            (fields(&rec))
            h2 { "Contributions and curators" }
            (fields(&count))
            (fields(&curators))
        };
        Ok(Page::new(format!("Datanet d{id}"), Section::Explorer, body))
    })
    .await
}
