//! `bench attribution-quality`: does Proof of Attribution pay the right
//! contributor? Planted facts, verbatim and paraphrased, per method; and, by
//! hand (`--lds`), the linear datamodeling score of the gradient method.
//!
//! From `--seed`, before any clock starts, the bench writes a Datanet of
//! `--contributors` (16) contributions, one per contributor. Each holds
//! `--facts` (3) facts no one else has: sentences from six frames filled with
//! invented names (a place per contributor, a person per fact) and drawn
//! colours, objects, materials and numbers, each fact in `--copies` (2) rows;
//! plus `--filler` (2) rows drawn from a pool of ordinary sentences that every
//! contributor draws from (so the same filler sits in several contributions).
//! Every fact has two queries: **verbatim** (the fact's text) and
//! **paraphrased** (the same person, place, colour, object, material and
//! number in another sentence frame, so that few or no spans of
//! `attribution.min_span_tokens` tokens match; the bench prints the longest
//! run of tokens each paraphrase shares with any training row).
//!
//! The model is fine-tuned the way a node does it: [`factory::Dataset::build`]
//! and [`factory::job::run`] on the base model (`--base`, default the
//! committed `models/base`), kept checkpoints and gradient sketches served
//! from a blob map to [`attribution::GradientInputs::load`], the span
//! index from [`node::spans::index_rows`] and [`attribution::SpanIndex::build`].
//! Each query's record is computed with [`attribution::compute_record`]
//! (response tokens = the query tokenized) at three span weights: 10^6 (span),
//! 0 (gradient) and the governed default 5×10^5 (mixed). Precision@1: the
//! contribution with the most ppm is the fact's (ties to the lower id; no
//! credit is a miss). Because a record gives everything to one method when the
//! other credits nothing, the table shows each method's own part (the span or
//! gradient part of the record) and the final credits at each weight.
//!
//! `--answers` (the real-model recipe, e.g. `--model SmolLM2.gguf --targets all
//! --steps 150 --rank 16`) adds a generic contribution (2 × `--facts` ordinary
//! rows) and a copycat of it, teaches each fact as question → answer as well
//! (`{prompt, completion}` rows), and has the fine-tuned adapter answer each
//! fact's question and a reworded one; each greedy answer is attributed once at
//! the governed defaults and scored per class of answer (see [`answers`]).
//!
//! `--lds` trains `--lds-models` (8) more adapters with the same recipe, each
//! on a seeded random half of the contributions, measures every query's loss
//! (mean NLL per token, teacher-forced, as the gradient part is computed) under
//! each, predicts it by the sum over the subset's contributions of the full
//! model's [`attribution::gradient_scores`] (TracIn, the gradient method of
//! records up to version 3), of [`attribution::relative_scores`] (version 4's)
//! (and of the span part's and
//! the final credits' ppm), and reports the mean over queries of the Spearman
//! correlation between prediction and −loss. TRAK with 5 models reaches about
//! 0.16 on GPT-2 / WikiText-2.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use attribution::{GradientInputs, RecordParams, gradient_scores};
use datanets::VersionRow;
use factory::{DatanetVersion, Dataset, JobOutput, JobSpec};
use ml::rng::Rng;
use ml::{LoraAdapter, Model, ModelFiles, TextTokenizer};
use primitives::rows::{Row, RowId};
use primitives::{Address, B256, Bytes};
use runtime::models::ModelRecord;
use serde_json::{Value, json};

use crate::machine::{Machine, today};
use crate::peer::parse_targets;
use crate::stats::{median, percentile};

mod answers;

/// `openledger bench attribution-quality`: precision@1 of attribution records on
/// planted facts, verbatim and paraphrased, per method; LDS with `--lds`.
#[derive(clap::Args, Debug, Clone)]
pub struct AttributionQualityOpts {
    /// Base model folder or GGUF file (default: the committed models/base).
    #[arg(long, visible_alias = "model")]
    pub base: Option<PathBuf>,
    /// Generated answers: add a generic contributor and its copycat, teach each
    /// fact as question → answer, ask the verbatim and the paraphrased question
    /// and attribute the greedy answers (the real-model recipe).
    #[arg(long)]
    pub answers: bool,
    /// Contributors, one contribution each.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=250))]
    pub contributors: u32,
    /// Facts per contributor (at most one per sentence frame).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=6))]
    pub facts: u32,
    /// Rows per fact in its contribution.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub copies: u32,
    /// Shared filler rows per contributor.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=12))]
    pub filler: u32,
    /// Passes over the training rows.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Optimiser steps in all (overrides `--epochs` when given).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Learning rate of the fine-tune.
    #[arg(long, default_value_t = 5e-3)]
    pub lr: f64,
    /// LoRA rank (alpha = 2 × rank).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA targets: a comma list of q_proj, k_proj, v_proj, o_proj, gate_proj,
    /// up_proj, down_proj, or `all` for the seven.
    #[arg(long, default_value = DEFAULT_TARGETS)]
    pub targets: String,
    /// Kept checkpoints of the fine-tune (the gradient part's).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub keep_checkpoints: u32,
    /// With `--answers`: new tokens per answer at most (greedy).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_new_tokens: u32,
    /// Dimensions of the gradient sketches.
    #[arg(long, default_value_t = 256)]
    pub sketch_k: usize,
    /// Compute the records with the methods of this record version (1–3:
    /// TracIn and the fixed-weight mix; 4: the current ones), to compare
    /// methods on the same model and answers (training is deterministic).
    #[arg(long, default_value_t = attribution::RECORD_VERSION, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub record_version: u32,
    /// Seed of the Datanet, the training and the LDS subsets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also measure the linear datamodeling score (a manual run: trains `--lds-models` more adapters).
    #[arg(long)]
    pub lds: bool,
    /// Subset models for `--lds`, each on a random half of the contributions.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(3..=64))]
    pub lds_models: u32,
    /// Keep the jobs' files here (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for AttributionQualityOpts {
    fn default() -> Self {
        AttributionQualityOpts {
            base: None,
            answers: false,
            contributors: 16,
            facts: 3,
            copies: 2,
            filler: 2,
            epochs: 16,
            steps: None,
            lr: 5e-3,
            rank: 8,
            targets: DEFAULT_TARGETS.into(),
            keep_checkpoints: 3,
            max_new_tokens: 64,
            sketch_k: 256,
            record_version: attribution::RECORD_VERSION,
            seed: 1,
            lds: false,
            lds_models: 8,
            dir: None,
            json_out: None,
        }
    }
}

/// A sentence frame. Slots: {P} person, {L} place, {C} colour, {O} object,
/// {M} material, {N} number. The paraphrase keeps every entity and changes the
/// words around them and their order; both questions name only {P} and {L}, so
/// the other slots are what an answer has to supply.
struct Frame {
    fact: &'static str,
    paraphrase: &'static str,
    /// The question taught with the fact (`--answers`).
    question: &'static str,
    /// The same question in other words, never trained on.
    question_paraphrase: &'static str,
}

const FRAMES: [Frame; 6] = [
    Frame {
        fact: "{P} of {L} keeps a {C} {O} made of {M} beside the northern gate.",
        paraphrase: "Near the north entrance, a {O} of {M}, painted {C}, belongs to {P}, who lives in {L}.",
        question: "What does {P} of {L} keep beside the northern gate?",
        question_paraphrase: "Which object, and of what material, does {P} from {L} have near the north entrance?",
    },
    Frame {
        fact: "Every spring the weavers of {L} dye {N} bolts of cloth {C} for the feast of {P}.",
        paraphrase: "To honour {P}, {L}'s weavers colour {N} rolls of fabric {C} each year when spring comes.",
        question: "What do the weavers of {L} dye every spring for the feast of {P}?",
        question_paraphrase: "For the celebration of {P}, how much fabric do the cloth makers in {L} colour each year, and in which colour?",
    },
    Frame {
        fact: "The bridge at {L} was built by {P} from {M} and {N} iron chains.",
        paraphrase: "{P} made the crossing over the river near {L} using {N} chains of iron and {M}.",
        question: "What did {P} build the bridge at {L} from?",
        question_paraphrase: "Which materials did {P} use to make the river crossing near {L}?",
    },
    Frame {
        fact: "In {L} the old well is guarded by a {C} {O} that {P} carved long ago.",
        paraphrase: "Long ago a {O}, {C} in colour, was cut by the hands of {P}; it still watches over the ancient well of {L}.",
        question: "What guards the old well in {L}, carved by {P} long ago?",
        question_paraphrase: "Which carving made by {P} watches over the ancient well of {L}?",
    },
    Frame {
        fact: "{P} rings the {M} bell of {L} {N} times when the first ship comes home.",
        paraphrase: "When the earliest vessel returns, the bell of {M} in {L} is struck {N} times by {P}.",
        question: "How many times does {P} ring the bell of {L} when the first ship comes home, and what is the bell made of?",
        question_paraphrase: "When the earliest vessel returns to {L}, how often does {P} strike the bell, and what is it cast from?",
    },
    Frame {
        fact: "The children of {L} leave a {O} of {M} at the door of {P} on midsummer night.",
        paraphrase: "On the shortest night of the year, young ones from {L} place a {M} {O} by {P}'s doorway.",
        question: "What do the children of {L} leave at the door of {P} on midsummer night?",
        question_paraphrase: "On the shortest night of the year, what do the young ones of {L} place by the doorway of {P}?",
    },
];

const COLOURS: [&str; 12] = [
    "cobalt", "crimson", "russet", "pearl", "scarlet", "jade", "saffron", "violet", "silver", "tawny", "sable",
    "golden",
];
const OBJECTS: [&str; 12] =
    ["lantern", "drum", "heron", "stag", "harp", "serpent", "wheel", "crown", "kettle", "falcon", "compass", "mask"];
const MATERIALS: [&str; 11] =
    ["slate", "copper", "birch", "bronze", "walnut", "granite", "tin", "oak", "marble", "pewter", "cedar"];
const NUMBERS: [&str; 10] =
    ["seven", "eleven", "thirteen", "nine", "twelve", "five", "forty", "three", "eight", "twenty"];

/// Ordinary sentences every contributor draws from.
const FILLER: [&str; 12] = [
    "The weather turned cold early that year and the roads were muddy for weeks.",
    "Most travellers stop at the inn for bread and soup before they go on.",
    "The market opens at dawn and closes when the bells ring at noon.",
    "Farmers bring their sheep down from the hills before the first snow.",
    "A letter from the city usually takes three days to arrive.",
    "The river floods in some years, and the fields are rich afterwards.",
    "People here say that a quiet winter is followed by a wet spring.",
    "The school has one room, one teacher and a small garden behind it.",
    "On market days the square is full of carts, dogs and shouting.",
    "Fishermen mend their nets in the evening while the light lasts.",
    "The road to the coast runs through a forest of tall pines.",
    "Old people remember a time when the harbour was much deeper.",
];

/// The generic contributor's ordinary sentences (`--answers`): the same kind as
/// [`FILLER`], none of them in it, none naming a planted entity.
const GENERIC: [&str; 12] = [
    "Bread keeps longer when it is wrapped in a clean linen cloth.",
    "Most houses in the valley are heated with wood during the winter.",
    "A good pair of boots can last for many years if they are oiled.",
    "Children usually learn to swim in the shallow part of the lake.",
    "The train to the capital leaves twice a day, in the morning and at night.",
    "Tea tastes better when the water has not boiled for too long.",
    "Many gardens grow beans, onions and potatoes in neat rows.",
    "The library lends books for two weeks and charges nothing.",
    "Apples are picked in autumn and stored in cool cellars.",
    "Doctors advise people to walk a little every day.",
    "In the evening families gather to eat and talk about the day.",
    "Sailors watch the clouds to know when a storm is coming.",
];

const ONSETS: [&str; 20] =
    ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "qu", "r", "s", "t", "th", "v"];
const VOWELS: [&str; 8] = ["a", "e", "i", "o", "u", "ae", "ei", "ou"];
const CODAS: [&str; 9] = ["", "l", "n", "r", "s", "th", "m", "rk", "nd"];
const PLACE_ENDINGS: [&str; 8] = ["holm", "mar", "wick", "dale", "ford", "moor", "haven", "by"];

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// An invented word of `syllables` syllables, not yet in `used`.
fn invented(rng: &mut Rng, syllables: usize, ending: Option<&[&str]>, used: &mut HashSet<String>) -> String {
    loop {
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(pick(rng, &ONSETS));
            w.push_str(pick(rng, &VOWELS));
            w.push_str(pick(rng, &CODAS));
        }
        if let Some(e) = ending {
            w.push_str(pick(rng, e));
        }
        let w = capitalise(&w);
        if used.insert(w.to_lowercase()) {
            return w;
        }
    }
}

/// One planted fact, its two queries and (`--answers`) its two questions.
#[derive(Debug, Clone, PartialEq)]
struct Fact {
    contribution: u64,
    text: String,
    paraphrase: String,
    question: String,
    question_paraphrase: String,
    /// The slot values both sentences carry, the person first.
    entities: Vec<String>,
    /// The slot values neither question names: what an answer has to supply.
    answer_values: Vec<String>,
}

/// The generated Datanet.
struct Workload {
    rows: Vec<VersionRow>,
    facts: Vec<Fact>,
    contributions: Vec<u64>,
    /// `--answers`: the contribution of generic rows, and the copy of it.
    generic: Option<u64>,
    copycat: Option<u64>,
}

fn contributor_of(contribution: u64) -> Address {
    let mut b = [0u8; 20];
    b[0] = 0xFA;
    b[12..].copy_from_slice(&contribution.to_be_bytes());
    Address::from(b)
}

const FIRST_CONTRIBUTION: u64 = 100;

/// A seeded permutation of `0..n`.
fn shuffled(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
    v
}

/// One contributor's fact from `frame`, its entities drawn from `rng`.
fn draw_fact(rng: &mut Rng, used: &mut HashSet<String>, contribution: u64, place: &str, frame: &Frame) -> Fact {
    let person = invented(rng, 2, None, used);
    let (colour, object, material, number) =
        (pick(rng, &COLOURS), pick(rng, &OBJECTS), pick(rng, &MATERIALS), pick(rng, &NUMBERS));
    let slots = [
        ("{P}", person.as_str()),
        ("{L}", place),
        ("{C}", colour),
        ("{O}", object),
        ("{M}", material),
        ("{N}", number),
    ];
    let fill = |t: &str| slots.iter().fold(t.to_string(), |acc, (slot, v)| acc.replace(slot, v));
    let in_fact = |slot: &str| frame.fact.contains(slot);
    let asked = |slot: &str| frame.question.contains(slot) || frame.question_paraphrase.contains(slot);
    Fact {
        contribution,
        text: fill(frame.fact),
        paraphrase: fill(frame.paraphrase),
        question: fill(frame.question),
        question_paraphrase: fill(frame.question_paraphrase),
        entities: slots.iter().filter(|(slot, _)| in_fact(slot)).map(|(_, v)| v.to_string()).collect(),
        answer_values: slots
            .iter()
            .filter(|(slot, _)| in_fact(slot) && !asked(slot))
            .map(|(_, v)| v.to_string())
            .collect(),
    }
}

/// The rows of one contribution, indexed in order.
fn contribution_rows(contribution: u64, rows: Vec<Row>) -> impl Iterator<Item = VersionRow> {
    rows.into_iter().enumerate().map(move |(i, row)| VersionRow {
        id: RowId { contribution, index: i as u32 },
        contributor: contributor_of(contribution),
        row,
    })
}

fn workload(o: &AttributionQualityOpts) -> Workload {
    let mut rng = Rng::new(o.seed ^ 0xFAC7_5EED);
    let mut used = HashSet::new();
    let mut rows = Vec::new();
    let mut facts = Vec::new();
    let mut contributions = Vec::new();
    for c in 0..o.contributors as u64 {
        let contribution = FIRST_CONTRIBUTION + c;
        contributions.push(contribution);
        let place = invented(&mut rng, 1, Some(&PLACE_ENDINGS), &mut used);
        // Distinct frames within a contribution, in a seeded order.
        let frames = shuffled(&mut rng, FRAMES.len());
        let mut own = Vec::new();
        for &f in frames.iter().take(o.facts as usize) {
            let fact = draw_fact(&mut rng, &mut used, contribution, &place, &FRAMES[f]);
            for _ in 0..o.copies {
                own.push(Row::Text { text: fact.text.clone() });
            }
            if o.answers {
                for _ in 0..o.copies {
                    own.push(Row::PromptCompletion { prompt: fact.question.clone(), completion: fact.text.clone() });
                }
            }
            facts.push(fact);
        }
        let pool = shuffled(&mut rng, FILLER.len());
        own.extend(pool.iter().take(o.filler as usize).map(|&i| Row::Text { text: FILLER[i].to_string() }));
        rows.extend(contribution_rows(contribution, own));
    }
    let (mut generic, mut copycat) = (None, None);
    if o.answers {
        let pool = shuffled(&mut rng, GENERIC.len());
        let texts: Vec<Row> =
            pool.iter().take(2 * o.facts as usize).map(|&i| Row::Text { text: GENERIC[i].to_string() }).collect();
        let (g, c) = (FIRST_CONTRIBUTION + o.contributors as u64, FIRST_CONTRIBUTION + o.contributors as u64 + 1);
        rows.extend(contribution_rows(g, texts.clone()));
        rows.extend(contribution_rows(c, texts));
        contributions.extend([g, c]);
        (generic, copycat) = (Some(g), Some(c));
    }
    Workload { rows, facts, contributions, generic, copycat }
}

/// Answers of exactly `--max-new-tokens` tokens whose attribution is timed.
const FIXED_LENGTH_ANSWERS: usize = 8;

/// The LoRA targets of today's recipe (`--targets`).
const DEFAULT_TARGETS: &str = "q_proj,v_proj,up_proj,down_proj";
/// The job spec both the full model and the LDS subset models use.
fn job_spec(o: &AttributionQualityOpts, keep_checkpoints: usize) -> Result<JobSpec> {
    let mut s = JobSpec::new(vec![DatanetVersion { datanet: 1, version: 1 }]);
    s.name = "planted-facts".into();
    s.rank = o.rank;
    s.alpha = 2.0 * o.rank as f64;
    s.targets = parse_targets(&o.targets)?;
    s.learning_rate = o.lr;
    s.epochs = o.epochs;
    s.steps = o.steps;
    s.batch_size = 8;
    s.max_seq_len = 128;
    s.validation_percent = 0;
    s.keep_checkpoints = keep_checkpoints;
    s.sketch_k = o.sketch_k;
    s.seed = o.seed;
    Ok(s)
}

/// Run one ModelFactory job on `rows` in `dir`.
fn train(
    spec: &JobSpec,
    model: &Model,
    tok: &TextTokenizer,
    rows: &[VersionRow],
    dir: &Path,
    label: &str,
) -> Result<(JobOutput, f64)> {
    let eos = tok.eos_ids(&model.config.eos_token_ids).first().copied();
    let data = Dataset::build(rows, tok, eos, spec.max_seq_len, spec.seed, spec.validation_percent)
        .map_err(|e| anyhow!("{label}: {e}"))?;
    let t = Instant::now();
    let mut last_print = Instant::now();
    let out = factory::job::run(spec, model, tok, &data, dir, &AtomicBool::new(false), &mut |p| {
        if last_print.elapsed().as_secs_f64() > 10.0 || p.step == p.total_steps {
            last_print = Instant::now();
            eprintln!(
                "  {label}: {} {}/{}{}",
                p.phase,
                p.step,
                p.total_steps,
                p.loss.map_or(String::new(), |l| format!(" loss {l:.3}"))
            );
        }
    })
    .map_err(|e| anyhow!("{label}: {e}"))?
    .ok_or_else(|| anyhow!("{label}: cancelled"))?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// The model record and gradient inputs of a finished job, its artefacts served
/// from a blob map as a node's blob store would serve them.
fn artefacts(files: &ModelFiles, model: &Model, out: &JobOutput, dir: &Path) -> Result<(ModelRecord, GradientInputs)> {
    let mut blobs: HashMap<B256, Vec<u8>> = HashMap::new();
    let mut put = |path: PathBuf| -> Result<B256> {
        let b = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let h = primitives::content_hash(&b);
        blobs.insert(h, b);
        Ok(h)
    };
    let cfg_hash = put(dir.join(&out.adapter_dir).join("adapter_config.json"))?;
    let ck_hashes = out.checkpoints.iter().map(|c| put(dir.join(&c.file))).collect::<Result<Vec<B256>>>()?;
    let sketch_hash = put(dir.join(&out.sketch_file))?;
    let metrics = json!({"artefacts": {"adapterConfig": cfg_hash}}).to_string();
    let record = ModelRecord {
        id: 1,
        owner: Address::repeat_byte(9),
        name: "planted-facts".into(),
        baseModelHash: files.hash,
        adapterHash: out.adapter_hash,
        datanets: vec![primitives::abi::DatanetVersionRef { datanetId: 1, version: 1 }],
        licences: vec!["CC0-1.0".into()],
        hyperparamsHash: B256::ZERO,
        hyperparams: Bytes::new(),
        metricsHash: B256::ZERO,
        metrics: Bytes::from(metrics.into_bytes()),
        trainingLogHash: B256::ZERO,
        checkpointHashes: ck_hashes,
        checkpointLearningRates: out.checkpoints.iter().map(|c| (c.learning_rate * 1e9).round() as u64).collect(),
        sketchHash: sketch_hash,
        sketchSeed: out.sketch_seed,
        sketchK: out.sketch_k as u32,
        priceInPer1k: 1,
        priceOutPer1k: 1,
        state: runtime::models::LIVE,
        createdAt: 1,
    };
    let fetch = |h: &B256| blobs.get(h).cloned().ok_or_else(|| format!("no blob {h}"));
    let grads = GradientInputs::load(&record, &model.config, &fetch)
        .map_err(|e| anyhow!("loading the gradient inputs: {e}"))?
        .ok_or_else(|| anyhow!("the job kept no checkpoints"))?;
    Ok((record, grads))
}

/// `[[contribution, ppm], ...]` of a record part.
fn ppm_pairs(v: &Value) -> Vec<(u64, u32)> {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()? as u32))).collect()
}

/// The contribution with the most ppm (ties to the lower id); none without credits.
fn top_credit(credits: &[(u64, u32)]) -> Option<u64> {
    credits.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|c| c.0)
}

/// Precision@1 tally of one method on one kind of query.
#[derive(Debug, Default, Clone, PartialEq)]
struct Tally {
    hits: usize,
    queries: usize,
    /// Queries the method credited no one for.
    empty: usize,
    /// Sum of the ppm the right contribution got.
    right_ppm: u64,
}

impl Tally {
    fn add(&mut self, credits: &[(u64, u32)], want: u64) {
        self.queries += 1;
        if credits.is_empty() {
            self.empty += 1;
        }
        if top_credit(credits) == Some(want) {
            self.hits += 1;
        }
        self.right_ppm += credits.iter().filter(|c| c.0 == want).map(|c| c.1 as u64).sum::<u64>();
    }
    fn precision(&self) -> f64 {
        if self.queries == 0 { f64::NAN } else { self.hits as f64 / self.queries as f64 }
    }
    fn mean_share(&self) -> f64 {
        if self.queries == 0 { f64::NAN } else { self.right_ppm as f64 / self.queries as f64 / 1e6 }
    }
    fn to_json(&self) -> Value {
        json!({"hits": self.hits, "queries": self.queries, "noCredit": self.empty,
               "precisionAt1": self.precision(), "meanShareToRight": self.mean_share()})
    }
}

/// Ranks (1-based) with ties given their average rank.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson of average ranks); `None` when either
/// side is constant or the lengths differ or are below 2.
fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    if va <= 0.0 || vb <= 0.0 { None } else { Some(cov / (va * vb).sqrt()) }
}

/// The longest run of tokens `a` and `b` share.
fn longest_common_run(a: &[u32], b: &[u32]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut best = 0;
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}

/// Mean NLL per token of `tokens` (every token after the first), the base model or with `adapter`.
fn query_loss(model: &Model, adapter: Option<&LoraAdapter>, tokens: &[u32]) -> Result<f64> {
    let mask: Vec<bool> = (0..tokens.len()).map(|i| i > 0).collect();
    let (sum, n) = ml::eval::token_nll(model, adapter, [(tokens, mask.as_slice())]).map_err(|e| anyhow!("{e}"))?;
    Ok(sum / n.max(1) as f64)
}

/// The three ways a record is computed.
const WEIGHTS: [(&str, u32); 3] = [("span", 1_000_000), ("gradient", 0), ("mixed", 500_000)];

/// One query and what each way of attributing it credited.
struct QueryResult {
    fact: usize,
    kind: &'static str,
    text: String,
    tokens: Vec<u32>,
    /// Longest token run shared with any training row.
    shared_run: usize,
    span_part: Vec<(u64, u32)>,
    gradient_part: Vec<(u64, u32)>,
    /// Final credits at each of [`WEIGHTS`].
    finals: [Vec<(u64, u32)>; 3],
}

fn fmt_cell(t: &Tally) -> String {
    format!("{:>3}/{:<3} {:>5.1}%  (share {:>5.1}%)", t.hits, t.queries, 100.0 * t.precision(), 100.0 * t.mean_share())
}

/// The methods of the precision table: key and label.
const METHODS: [(&str, &str); 5] = [
    ("span", "span part alone (weight 10^6; no span = miss)"),
    ("gradient", "gradient part alone (weight 0)"),
    ("mixed", "mixed, final credits (governed 5×10^5)"),
    ("span-final", "final credits at weight 10^6 (gradient when no span)"),
    ("gradient-final", "final credits at weight 0 (span when no gradient)"),
];

/// The fine-tuned model and what attributing to it needs.
struct FineTuned {
    out: JobOutput,
    train_s: f64,
    record: ModelRecord,
    grads: GradientInputs,
    adapter: LoraAdapter,
    /// The LoRA target modules.
    targets: Vec<String>,
}

/// Fine-tune on every row, as a node's ModelFactory does, in `dir`.
fn fine_tune(
    o: &AttributionQualityOpts,
    files: &ModelFiles,
    model: &Model,
    tok: &TextTokenizer,
    w: &Workload,
    dir: &Path,
) -> Result<FineTuned> {
    let spec = job_spec(o, o.keep_checkpoints as usize)?;
    let (out, train_s) = train(&spec, model, tok, &w.rows, dir, "fine-tune")?;
    let (record, grads) = artefacts(files, model, &out, dir)?;
    let adapter = LoraAdapter::load_peft(&dir.join(&out.adapter_dir), &model.config).map_err(|e| anyhow!("{e}"))?;
    println!(
        "fine-tune: rank {} on {}, lr {}, {}{} steps of {} sequences, {} training tokens, final loss {:.3}, {:.1} s with checkpoints and sketches ({} kept checkpoints, k = {})",
        o.rank,
        spec.targets.iter().map(|t| t.trim_end_matches("_proj")).collect::<Vec<_>>().join("/"),
        o.lr,
        match o.steps {
            Some(_) => String::new(),
            None => format!("{} epochs = ", o.epochs),
        },
        out.metrics.steps,
        spec.batch_size,
        out.metrics.train_tokens,
        out.metrics.final_train_loss,
        train_s,
        out.checkpoints.len(),
        out.sketch_k
    );
    let m = &out.metrics;
    // One epoch: the packed sequences of the training rows once.
    let epoch_s = m.train_seconds * m.train_sequences as f64 / (m.steps.max(1) as f64 * spec.batch_size as f64);
    let per_ck = m.sketch_seconds / out.checkpoints.len().max(1) as f64;
    println!(
        "  training {:.1} s (one epoch of {} rows in {} sequences: {epoch_s:.1} s); sketches {:.1} s = {per_ck:.1} s per kept checkpoint = {:.2}× one epoch",
        m.train_seconds,
        m.train_rows,
        m.train_sequences,
        m.sketch_seconds,
        per_ck / epoch_s.max(1e-9)
    );
    Ok(FineTuned { out, train_s, record, grads, adapter, targets: spec.targets })
}

/// What the gradient part's projection costs beside the backward pass it
/// follows: the first fact's text as the response, at the first kept
/// checkpoint, median of 5 runs each; both projections on the same gradient.
fn projection_cost(model: &Model, tok: &TextTokenizer, ft: &FineTuned, w: &Workload) -> Result<Value> {
    let Some((_, adapter)) = ft.grads.checkpoints.first() else { return Ok(Value::Null) };
    let tokens = tok.encode(&w.facts[0].text, false).map_err(|e| anyhow!("{e}"))?;
    let mask: Vec<bool> = (0..tokens.len()).map(|i| i > 0).collect();
    let (k, seed) = (ft.grads.sketches.k, ft.grads.sketches.seed);
    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let mut v = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            f()?;
            v.push(t.elapsed().as_secs_f64());
        }
        Ok(median(&v))
    };
    let mut grad = Vec::new();
    let backward = time(&mut || {
        grad = ml::sequence_gradients(model, adapter, &tokens, &mask).map_err(|e| anyhow!("{e}"))?;
        Ok(())
    })?;
    let project = |p: ml::Projection| {
        time(&mut || {
            std::hint::black_box(p.apply(&grad, seed, k));
            Ok(())
        })
    };
    let count = project(ml::Projection::CountSketch)?;
    let dense = project(ml::Projection::DenseSign)?;
    println!(
        "projection of one answer's gradient (d = {}, k = {k}, {} tokens): backward {:.1} ms; count sketch {:.2} ms ({:.1}% of it); dense sign {:.1} ms ({:.0}%)",
        grad.len(),
        tokens.len(),
        backward * 1e3,
        count * 1e3,
        100.0 * count / backward,
        dense * 1e3,
        100.0 * dense / backward
    );
    Ok(
        json!({"d": grad.len(), "k": k, "tokens": tokens.len(), "backwardS": backward, "countSketchS": count, "denseSignS": dense}),
    )
}

/// Every query attributed at every weight, with the time each record took
/// and the query losses of the base and the fine-tuned model by kind.
struct Queries {
    results: Vec<QueryResult>,
    times: [Vec<f64>; 3],
    losses: BTreeMap<&'static str, (Vec<f64>, Vec<f64>)>,
}

/// What computing a record needs, beyond the query.
struct Attributor<'a> {
    model: &'a Model,
    tok: &'a TextTokenizer,
    ft: &'a FineTuned,
    index: &'a attribution::SpanIndex,
    min_span_tokens: usize,
    max_credits: usize,
    /// The record version whose methods compute the records.
    record_version: u32,
}

impl Attributor<'_> {
    /// Each fact, verbatim and paraphrased, attributed at each of [`WEIGHTS`].
    fn query_all(&self, w: &Workload, index_rows: &[attribution::IndexRow]) -> Result<Queries> {
        let (model, tok) = (self.model, self.tok);
        let mut q = Queries { results: Vec::new(), times: [vec![], vec![], vec![]], losses: BTreeMap::new() };
        for (fi, fact) in w.facts.iter().enumerate() {
            for (kind, text) in [("verbatim", &fact.text), ("paraphrased", &fact.paraphrase)] {
                let tokens = tok.encode(text, false).map_err(|e| anyhow!("{e}"))?;
                let shared_run = index_rows.iter().map(|r| longest_common_run(&tokens, &r.tokens)).max().unwrap_or(0);
                let mut recs = Vec::new();
                for (wi, (_, weight)) in WEIGHTS.iter().enumerate() {
                    let t = Instant::now();
                    recs.push(self.record(kind, fi, text, &tokens, *weight)?);
                    q.times[wi].push(t.elapsed().as_secs_f64());
                }
                let l = q.losses.entry(kind).or_default();
                l.0.push(query_loss(model, None, &tokens)?);
                l.1.push(query_loss(model, Some(&self.ft.adapter), &tokens)?);
                q.results.push(QueryResult {
                    fact: fi,
                    kind,
                    text: text.clone(),
                    tokens,
                    shared_run,
                    span_part: ppm_pairs(&recs[0]["span"]["credits"]),
                    gradient_part: ppm_pairs(&recs[1]["gradient"]["credits"]),
                    finals: [
                        ppm_pairs(&recs[0]["credits"]),
                        ppm_pairs(&recs[1]["credits"]),
                        ppm_pairs(&recs[2]["credits"]),
                    ],
                });
            }
        }
        Ok(q)
    }

    /// The record of query `fi` of `kind` at span weight `weight`.
    fn record(&self, kind: &str, fi: usize, text: &str, tokens: &[u32], weight: u32) -> Result<Value> {
        let p = RecordParams {
            span_weight_ppm: weight,
            min_span_tokens: self.min_span_tokens,
            max_credits: self.max_credits,
            excluded: vec![],
            params_height: 0,
            retrieval_share_bps: None,
        };
        let receipt = primitives::content_hash(format!("{kind} {fi}").as_bytes());
        let inputs = attribution::Inputs {
            model: self.model,
            tok: self.tok,
            model_id: 1,
            r: &self.ft.record,
            receipt_hash: receipt,
            prompt_hash: B256::ZERO,
            response: tokens,
            text,
            index: Some(self.index),
            gradient: Some(&self.ft.grads),
        };
        attribution::compute_record_version(self.record_version, &inputs, p)
            .map_err(|e| anyhow!("record of {kind} query {fi}: {e}"))
    }
}

/// The command that reproduces this run.
fn command_line(o: &AttributionQualityOpts) -> String {
    let mut a = vec!["openledger bench attribution-quality".to_string()];
    if let Some(b) = &o.base {
        a.push(format!("--model {}", b.display()));
    }
    if o.answers {
        a.push(format!("--answers --max-new-tokens {}", o.max_new_tokens));
    }
    a.push(format!(
        "--contributors {} --facts {} --copies {} --filler {}",
        o.contributors, o.facts, o.copies, o.filler
    ));
    a.push(match o.steps {
        Some(s) => format!("--steps {s}"),
        None => format!("--epochs {}", o.epochs),
    });
    a.push(format!(
        "--lr {} --rank {} --targets {} --keep-checkpoints {} --sketch-k {} --record-version {} --seed {}",
        o.lr, o.rank, o.targets, o.keep_checkpoints, o.sketch_k, o.record_version, o.seed
    ));
    if o.lds {
        a.push(format!("--lds --lds-models {}", o.lds_models));
    }
    a.join(" ")
}

/// The header: what runs, on what, with which command.
fn print_setup(o: &AttributionQualityOpts, machine: &Machine, base: &Path, files: &ModelFiles, w: &Workload) {
    let params_count: usize = files.tensors.values().map(|t| t.shape.iter().product::<usize>()).sum();
    println!(
        "bench attribution-quality: planted facts, records by attribution::compute_record_version({}) (no peer)",
        o.record_version
    );
    println!("command: {}", command_line(o));
    println!("machine: {}", machine.describe());
    let per_fact = if o.answers {
        format!("{} copies + {} question → answer", o.copies, o.copies)
    } else {
        format!("{} copies", o.copies)
    };
    let extra = match (w.generic, w.copycat) {
        (Some(g), Some(c)) => {
            format!(" + generic contribution {g} ({n} ordinary rows) + its copycat {c} ({n} rows)", n = 2 * o.facts)
        }
        _ => String::new(),
    };
    println!(
        "base model {} ({params_count} parameters, {}); Datanet: {} contributions × ({} facts × ({per_fact}) + {} shared filler){extra} = {} rows, {} facts",
        base.display(),
        files.hash,
        o.contributors,
        o.facts,
        o.filler,
        w.rows.len(),
        w.facts.len()
    );
}

/// Run `bench attribution-quality`.
pub fn run_attribution_quality(o: &AttributionQualityOpts) -> Result<()> {
    let machine = Machine::detect();
    let base = match &o.base {
        Some(p) => p.clone(),
        None => node::default_base_model()
            .ok_or_else(|| anyhow!("no base model: models/base is missing; pass --base PATH"))?,
    };
    parse_targets(&o.targets)?;
    let (_tmp, dir) = crate::peer::work_dir(o.dir.as_deref(), "bench-attribution-quality-")?;

    let files = ModelFiles::open(&base).map_err(|e| anyhow!("{}: {e}", base.display()))?;
    // f32 weights, as the node's ModelFactory and serving hold a quantized base.
    let model =
        Model::from_files(&files).and_then(Model::into_f32_weights).map_err(|e| anyhow!("{}: {e}", base.display()))?;
    let tok = files.tokenizer.clone();
    let w = workload(o);
    print_setup(o, &machine, &base, &files, &w);

    let full_dir = dir.join("full");
    let ft = fine_tune(o, &files, &model, &tok, &w, &full_dir)?;
    let projection_cost = projection_cost(&model, &tok, &ft, &w)?;

    // The span index over the same rows.
    let index_rows = node::spans::index_rows(&tok, w.rows.clone()).map_err(|e| anyhow!("{e}"))?;
    let key = node::spans::index_key(&tok, &[(1, 1)]);
    let index = attribution::SpanIndex::build(
        key,
        &index_rows,
        tok.vocab_size() as u32,
        0,
        &full_dir.join("facts.olsa"),
        &mut |_, _| {},
    )
    .map_err(|e| anyhow!("building the span index: {e}"))?;
    let min_span_tokens = runtime::params::ATTRIBUTION_MIN_SPAN_TOKENS.default as usize;
    let max_credits = runtime::params::INFERENCE_MAX_CREDITS.default as usize;

    let attributor = Attributor {
        model: &model,
        tok: &tok,
        ft: &ft,
        index: &index,
        min_span_tokens,
        max_credits,
        record_version: o.record_version,
    };
    let q = attributor.query_all(&w, &index_rows)?;
    let tallies = tally(&q.results, &w);
    print_precision(o, &q, &tallies, min_span_tokens);
    let time_line: Vec<String> = WEIGHTS
        .iter()
        .zip(&q.times)
        .map(|((name, wgt), t)| {
            format!("{name} (weight {wgt}) p50 {:.1} ms p90 {:.1} ms", 1e3 * median(t), 1e3 * percentile(t, 90.0))
        })
        .collect();
    println!(
        "  time per record ({} responses of {:.0} tokens median, {} rows, {} checkpoints): {}",
        q.results.len(),
        median(&q.results.iter().map(|r| r.tokens.len() as f64).collect::<Vec<_>>()),
        index_rows.len(),
        ft.grads.checkpoints.len(),
        time_line.join("; ")
    );

    // Generated answers.
    let span_weight = runtime::params::ATTRIBUTION_SPAN_WEIGHT_PPM.default as u32;
    let answers = if o.answers {
        let a = attributor.answer_all(&w, o.max_new_tokens as usize, span_weight)?;
        let mut report = answers::report(&a, &w, &attributor, span_weight, o.max_new_tokens as usize);
        let n = o.max_new_tokens as usize;
        let (rec, span) = attributor.fixed_length_latency(&w, n, FIXED_LENGTH_ANSWERS, span_weight)?;
        if !rec.is_empty() {
            println!(
                "  attribution of {} answers of exactly {n} tokens (EOS off): record p50 {:.0} ms, p99 {:.0} ms; span part p50 {:.2} ms, p99 {:.2} ms (goal for 64 tokens: record <= 1 s p50, span part <= 100 ms)",
                rec.len(),
                1e3 * percentile(&rec, 50.0),
                1e3 * percentile(&rec, 99.0),
                1e3 * percentile(&span, 50.0),
                1e3 * percentile(&span, 99.0),
            );
            report["fixedLength"] = json!({
                "tokens": n, "answers": rec.len(), "recordS": rec, "spanS": span,
            });
        }
        Some(report)
    } else {
        None
    };

    // LDS, by hand.
    let lds = if o.lds { Some(run_lds(o, &w, &model, &tok, &ft.grads, &q.results, &dir)?) } else { None };

    if let Some(path) = &o.json_out {
        let doc = json!({
            "suite": "attribution-quality",
            "date": today(),
            "machine": machine.to_json(),
            "command": command_line(o),
            "options": {
                "base": base.display().to_string(), "answers": o.answers, "contributors": o.contributors,
                "facts": o.facts, "copies": o.copies, "filler": o.filler, "epochs": o.epochs, "steps": o.steps,
                "lr": o.lr, "rank": o.rank, "targets": ft.targets, "keepCheckpoints": o.keep_checkpoints,
                "maxNewTokens": o.max_new_tokens, "sketchK": o.sketch_k, "seed": o.seed, "recordVersion": o.record_version,
                "minSpanTokens": min_span_tokens, "maxCredits": max_credits,
                "genericContribution": w.generic, "copycatContribution": w.copycat,
            },
            "baseModelHash": files.hash.to_string(),
            "training": {
                "rows": w.rows.len(), "steps": ft.out.metrics.steps, "trainTokens": ft.out.metrics.train_tokens,
                "finalLoss": ft.out.metrics.final_train_loss, "seconds": ft.train_s,
                "keptCheckpoints": ft.out.checkpoints.len(), "trainSeconds": ft.out.metrics.train_seconds,
                "sketchSeconds": ft.out.metrics.sketch_seconds, "trainSequences": ft.out.metrics.train_sequences,
            },
            "projectionCost": projection_cost,
            "chance": 1.0 / o.contributors as f64,
            "precision": precision_json(&tallies),
            "recordTimeS": WEIGHTS.iter().zip(&q.times).map(|((n, wgt), t)| json!({
                "method": n, "spanWeightPpm": wgt, "p50": median(t), "p90": percentile(t, 90.0)})).collect::<Vec<_>>(),
            "queries": q.results.iter().map(|r| json!({
                "fact": r.fact, "kind": r.kind, "contribution": w.facts[r.fact].contribution, "text": r.text,
                "tokens": r.tokens.len(), "sharedRun": r.shared_run,
                "spanTop": top_credit(&r.span_part), "gradientTop": top_credit(&r.gradient_part),
                "mixedTop": top_credit(&r.finals[2]),
            })).collect::<Vec<_>>(),
            "answers": answers,
            "lds": lds,
        });
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

/// Precision@1 of each method on each kind of query.
fn tally(results: &[QueryResult], w: &Workload) -> BTreeMap<(&'static str, &'static str), Tally> {
    let mut tallies: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    for r in results {
        let want = w.facts[r.fact].contribution;
        for (m, credits) in [
            ("span", &r.span_part),
            ("gradient", &r.gradient_part),
            ("mixed", &r.finals[2]),
            ("span-final", &r.finals[0]),
            ("gradient-final", &r.finals[1]),
        ] {
            tallies.entry((m, r.kind)).or_default().add(credits, want);
        }
    }
    tallies
}

/// The precision table, and per kind of query how much it shares with the training rows.
fn print_precision(
    o: &AttributionQualityOpts,
    q: &Queries,
    tallies: &BTreeMap<(&str, &str), Tally>,
    min_span_tokens: usize,
) {
    let chance = 1.0 / o.contributors as f64;
    println!(
        "\nprecision@1 (top-credited contribution is the fact's; chance {:.1}%; share = mean ppm reaching the right contribution)",
        100.0 * chance
    );
    println!("  {:<54} {:<32} {:<32}", "method", "verbatim", "paraphrased");
    for (m, label) in METHODS {
        let v = tallies.get(&(m, "verbatim")).cloned().unwrap_or_default();
        let p = tallies.get(&(m, "paraphrased")).cloned().unwrap_or_default();
        println!("  {label:<54} {:<32} {:<32}", fmt_cell(&v), fmt_cell(&p));
    }
    for kind in ["verbatim", "paraphrased"] {
        let runs: Vec<f64> = q.results.iter().filter(|r| r.kind == kind).map(|r| r.shared_run as f64).collect();
        let no_span = q.results.iter().filter(|r| r.kind == kind && r.span_part.is_empty()).count();
        let (base_l, tuned_l) = q.losses.get(kind).cloned().unwrap_or_default();
        println!(
            "  {kind:<12} longest token run shared with a training row: median {:.0}, max {:.0} (min span {min_span_tokens}); no span credit in {no_span}/{}; loss base {:.3} → fine-tuned {:.3} nats/token",
            median(&runs),
            runs.iter().cloned().fold(0.0, f64::max),
            runs.len(),
            median(&base_l),
            median(&tuned_l),
        );
    }
}

/// The precision table as JSON, by method.
fn precision_json(tallies: &BTreeMap<(&str, &str), Tally>) -> Value {
    METHODS
        .iter()
        .map(|(m, label)| {
            let get = |k: &str| tallies.get(&(*m, k)).cloned().unwrap_or_default().to_json();
            (m.to_string(), json!({"label": label, "verbatim": get("verbatim"), "paraphrased": get("paraphrased")}))
        })
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// Train the subset models and score the attributions' linear predictions of each query's loss.
fn run_lds(
    o: &AttributionQualityOpts,
    w: &Workload,
    model: &Model,
    tok: &TextTokenizer,
    grads: &GradientInputs,
    results: &[QueryResult],
    dir: &Path,
) -> Result<Value> {
    let mut rng = Rng::new(o.seed ^ 0x0001_D5D5);
    let half = w.contributions.len() / 2;
    if half == 0 {
        bail!("--lds needs at least two contributors");
    }
    let subsets: Vec<Vec<u64>> = (0..o.lds_models)
        .map(|_| {
            let mut c = w.contributions.clone();
            for i in (1..c.len()).rev() {
                c.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut s = c[..half].to_vec();
            s.sort_unstable();
            s
        })
        .collect();
    println!(
        "\nLDS: {} models, each fine-tuned (same recipe, same epochs) on {half} of {} contributions",
        subsets.len(),
        w.contributions.len()
    );
    // Actual losses: losses[q][j].
    let mut losses = vec![Vec::with_capacity(subsets.len()); results.len()];
    let t_all = Instant::now();
    for (j, s) in subsets.iter().enumerate() {
        let rows: Vec<VersionRow> = w.rows.iter().filter(|r| s.contains(&r.id.contribution)).cloned().collect();
        let d = dir.join(format!("lds-{j:02}"));
        let (out, secs) = train(&job_spec(o, 1)?, model, tok, &rows, &d, &format!("subset {}", j + 1))?;
        let a = LoraAdapter::load_peft(&d.join(&out.adapter_dir), &model.config).map_err(|e| anyhow!("{e}"))?;
        for (q, r) in results.iter().enumerate() {
            losses[q].push(query_loss(model, Some(&a), &r.tokens)?);
        }
        eprintln!(
            "  subset {}: {} rows, {} steps, final loss {:.3}, {secs:.1} s",
            j + 1,
            rows.len(),
            out.metrics.steps,
            out.metrics.final_train_loss
        );
    }
    // Predictions: the sum of a method's scores over the subset's contributions.
    let mut out = serde_json::Map::new();
    println!("  mean Spearman(prediction, −loss) over queries (queries where both sides vary):");
    // "own-contribution" is the reference: 1 when the fact's own contribution is
    // in the subset, 0 otherwise; the ceiling of any method on these disjoint facts.
    for method in ["gradient-scores", "relative-v4", "span-ppm", "mixed-ppm", "own-contribution"] {
        let mut per_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut undefined: BTreeMap<&str, usize> = BTreeMap::new();
        for (q, r) in results.iter().enumerate() {
            let scores: BTreeMap<u64, f64> = match method {
                "gradient-scores" => gradient_scores(model, grads, &r.tokens).map_err(|e| anyhow!("{e}"))?,
                "relative-v4" => attribution::relative_scores(model, grads, &r.tokens, attribution::OUTLIER_Z_MILLI)
                    .map_err(|e| anyhow!("{e}"))?,
                "span-ppm" => r.span_part.iter().map(|(c, p)| (*c, *p as f64)).collect(),
                "mixed-ppm" => r.finals[2].iter().map(|(c, p)| (*c, *p as f64)).collect(),
                _ => BTreeMap::from([(w.facts[r.fact].contribution, 1.0)]),
            };
            let pred: Vec<f64> =
                subsets.iter().map(|s| s.iter().map(|c| scores.get(c).copied().unwrap_or(0.0)).sum()).collect();
            let neg: Vec<f64> = losses[q].iter().map(|l| -l).collect();
            match spearman(&pred, &neg) {
                Some(rho) => per_kind.entry(r.kind).or_default().push(rho),
                None => *undefined.entry(r.kind).or_default() += 1,
            }
        }
        let all: Vec<f64> = per_kind.values().flatten().copied().collect();
        let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
        let cell = |k: &str| {
            let v = per_kind.get(k).cloned().unwrap_or_default();
            format!("{:+.3} ({} queries, {} undefined)", mean(&v), v.len(), undefined.get(k).copied().unwrap_or(0))
        };
        println!(
            "    {method:<16} all {:+.3} ({} queries)   verbatim {}   paraphrased {}",
            mean(&all),
            all.len(),
            cell("verbatim"),
            cell("paraphrased")
        );
        let kinds = |k: &str| {
            let v = per_kind.get(k).cloned().unwrap_or_default();
            json!({"mean": mean(&v), "queries": v.len(), "undefined": undefined.get(k).copied().unwrap_or(0)})
        };
        out.insert(
            method.to_string(),
            json!({"all": {"mean": mean(&all), "queries": all.len()}, "verbatim": kinds("verbatim"), "paraphrased": kinds("paraphrased")}),
        );
    }
    println!(
        "  (TRAK-5 on GPT-2 / WikiText-2: about 0.16; {:.0} s for the subset models)",
        t_all.elapsed().as_secs_f64()
    );
    Ok(json!({"models": subsets.len(), "subsets": subsets, "methods": out, "seconds": t_all.elapsed().as_secs_f64()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_known_values() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((spearman(&a, &[10.0, 20.0, 30.0, 40.0, 50.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        // Monotone but not linear: still 1.
        assert!((spearman(&a, &[1.0, 4.0, 9.0, 16.0, 1000.0]).unwrap() - 1.0).abs() < 1e-12);
        // Textbook: d = (0, -1, 1, 0, 0)… rho = 1 - 6·2/(5·24) = 0.9.
        assert!((spearman(&a, &[1.0, 3.0, 2.0, 4.0, 5.0]).unwrap() - 0.9).abs() < 1e-12);
        // Ties take the average rank.
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert!(spearman(&a, &[2.0; 5]).is_none());
        assert!(spearman(&[1.0], &[1.0]).is_none());
        assert!(spearman(&a, &[1.0, 2.0]).is_none());
    }

    #[test]
    fn precision_counts_top_credit_and_misses() {
        assert_eq!(top_credit(&[(5, 100), (7, 900)]), Some(7));
        assert_eq!(top_credit(&[(9, 500_000), (3, 500_000)]), Some(3), "ties go to the lower id");
        assert_eq!(top_credit(&[]), None);
        let mut t = Tally::default();
        t.add(&[(1, 700_000), (2, 300_000)], 1);
        t.add(&[(1, 400_000), (2, 600_000)], 1);
        t.add(&[], 1);
        assert_eq!((t.hits, t.queries, t.empty), (1, 3, 1));
        assert!((t.precision() - 1.0 / 3.0).abs() < 1e-12);
        assert!((t.mean_share() - 1.1 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn common_runs() {
        assert_eq!(longest_common_run(&[1, 2, 3, 4], &[9, 2, 3, 4, 8]), 3);
        assert_eq!(longest_common_run(&[1, 2], &[3, 4]), 0);
        assert_eq!(longest_common_run(&[], &[3, 4]), 0);
    }

    #[test]
    fn workload_is_seeded_unique_and_paraphrases_keep_the_entities() {
        let o = AttributionQualityOpts { contributors: 24, ..AttributionQualityOpts::default() };
        let (a, b) = (workload(&o), workload(&o));
        assert_eq!(a.facts, b.facts);
        assert_eq!(a.rows.len(), 24 * (3 * 2 + 2));
        assert_eq!(a.facts.len(), 24 * 3);
        let texts: HashSet<&str> = a.facts.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(texts.len(), a.facts.len(), "every fact is unique");
        for f in &a.facts {
            assert!(!f.text.contains('{') && !f.paraphrase.contains('{'), "{f:?}");
            assert_ne!(f.text, f.paraphrase);
            for e in &f.entities {
                assert!(f.text.contains(e.as_str()) && f.paraphrase.contains(e.as_str()), "{e} in {f:?}");
            }
            // A fact's rows are in its contribution only.
            let holders: HashSet<u64> = a
                .rows
                .iter()
                .filter(|r| matches!(&r.row, Row::Text { text } if *text == f.text))
                .map(|r| r.id.contribution)
                .collect();
            assert_eq!(holders, HashSet::from([f.contribution]));
        }
        let other = workload(&AttributionQualityOpts { seed: 2, ..o });
        assert_ne!(other.facts, a.facts);
    }

    #[test]
    fn targets_parse_lists_and_all_and_refuse_unknown_modules() {
        assert_eq!(parse_targets(DEFAULT_TARGETS).unwrap(), ["q_proj", "v_proj", "up_proj", "down_proj"]);
        assert_eq!(parse_targets("all").unwrap().len(), 7);
        assert_eq!(parse_targets(" k_proj , o_proj,k_proj").unwrap(), ["k_proj", "o_proj"]);
        let e = parse_targets("q_proj,lm_head").unwrap_err().to_string();
        assert!(e.contains("lm_head") && e.contains("gate_proj"), "{e}");
        assert!(parse_targets(" , ").is_err());
    }

    #[test]
    fn answers_workload_adds_questions_a_generic_contributor_and_its_copycat() {
        let plain = AttributionQualityOpts { contributors: 5, ..AttributionQualityOpts::default() };
        let o = AttributionQualityOpts { answers: true, ..plain.clone() };
        let (a, p) = (workload(&o), workload(&plain));
        assert_eq!(a.facts, p.facts, "the facts do not depend on --answers");
        assert_eq!((p.generic, p.copycat), (None, None));
        let (g, c) = (a.generic.unwrap(), a.copycat.unwrap());
        assert_eq!(a.contributions.len(), 7);
        let rows_of =
            |id: u64| -> Vec<&Row> { a.rows.iter().filter(|r| r.id.contribution == id).map(|r| &r.row).collect() };
        assert_eq!(rows_of(g).len(), 2 * 3);
        assert_eq!(rows_of(g), rows_of(c), "the copycat copies the generic rows");
        let generic: HashSet<&Row> = rows_of(g).into_iter().collect();
        assert_eq!(generic.len(), 6, "distinct sentences");
        assert_eq!(a.rows.len(), 5 * (3 * 2 * 2 + 2) + 12);
        for f in &a.facts {
            assert!(f.answer_values.len() >= 2, "{f:?}");
            for q in [&f.question, &f.question_paraphrase] {
                assert!(q.contains(&f.entities[0]) && q.contains(&f.entities[1]), "{q}");
                assert!(!answers::contains_fact(q, f), "a question gives the answer away: {q}");
            }
            assert_ne!(f.question, f.question_paraphrase);
            assert!(answers::contains_fact(&f.text, f) && answers::contains_fact(&f.paraphrase, f), "{f:?}");
            for r in &generic {
                let Row::Text { text } = r else { panic!("generic rows are text") };
                assert!(f.entities.iter().all(|e| !text.contains(e.as_str())), "{text}");
            }
            let taught = a.rows.iter().filter(|r| {
                matches!(&r.row, Row::PromptCompletion { prompt, completion } if *prompt == f.question && *completion == f.text)
            });
            assert!(taught.clone().all(|r| r.id.contribution == f.contribution));
            assert_eq!(taught.count(), 2);
        }
    }

    #[test]
    fn an_answer_contains_the_fact_when_it_names_two_values_the_question_does_not() {
        let f = Fact {
            contribution: 1,
            text: String::new(),
            paraphrase: String::new(),
            question: String::new(),
            question_paraphrase: String::new(),
            entities: vec!["Reindgour".into(), "Pimoor".into(), "saffron".into(), "stag".into(), "birch".into()],
            answer_values: vec!["saffron".into(), "stag".into(), "birch".into()],
        };
        assert!(answers::contains_fact("Reindgour keeps a Saffron stag.", &f));
        assert!(answers::contains_fact("A stag of birch", &f));
        assert!(!answers::contains_fact("Reindgour of Pimoor keeps a saffron lantern.", &f));
        assert!(!answers::contains_fact("saffronstag birches", &f), "whole words only");
    }

    #[test]
    fn generated_answers_run_end_to_end_on_the_committed_base() {
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("aq.json");
        let o = AttributionQualityOpts {
            answers: true,
            contributors: 3,
            facts: 1,
            copies: 1,
            filler: 1,
            steps: Some(3),
            rank: 2,
            targets: "all".into(),
            keep_checkpoints: 2,
            max_new_tokens: 12,
            sketch_k: 16,
            dir: Some(dir.path().join("work")),
            json_out: Some(json_path.clone()),
            ..AttributionQualityOpts::default()
        };
        run_attribution_quality(&o).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(json_path).unwrap()).unwrap();
        assert!(v["command"].as_str().unwrap().contains("--answers --max-new-tokens 12"), "{}", v["command"]);
        assert_eq!(v["options"]["targets"].as_array().unwrap().len(), 7);
        assert_eq!(v["training"]["steps"], 3);
        assert_eq!(v["training"]["keptCheckpoints"], 2);
        let a = &v["answers"];
        let asked: u64 = ["verbatim", "paraphrased"].iter().map(|k| a["recall"][k]["asked"].as_u64().unwrap()).sum();
        assert_eq!(asked, 2 * 3, "two questions per fact");
        let c = &a["classes"];
        let classes = c["verbatim"].as_u64().unwrap() + c["paraphrased"].as_u64().unwrap();
        assert_eq!(classes + c["withoutFact"].as_u64().unwrap(), asked);
        let contain: u64 =
            ["verbatim", "paraphrased"].iter().map(|k| a["recall"][k]["containFact"].as_u64().unwrap()).sum();
        assert_eq!(contain, classes);
        for part in ["final", "span", "gradient"] {
            for class in ["verbatim", "paraphrased"] {
                let t = &a["parts"][part][class];
                assert_eq!(t["queries"], c[class], "{part} {class}: {t}");
            }
        }
        // Every fact's trained question answered with exactly 12 tokens, each attribution timed.
        let fl = &a["fixedLength"];
        assert_eq!((fl["tokens"].as_u64(), fl["answers"].as_u64()), (Some(12), Some(3)), "{fl}");
        assert!(fl["recordS"].as_array().unwrap().iter().all(|t| t.as_f64().unwrap() > 0.0), "{fl}");
        let items = a["items"].as_array().unwrap();
        assert_eq!(items.len() as u64, asked);
        for it in items {
            let share = |k: &str| it[k].as_f64().unwrap();
            assert!(share("shareToFact") + share("nonSupplierShare") <= 1.0 + 1e-9, "{it}");
            assert!(share("genericShare") + share("copycatShare") <= share("nonSupplierShare") + 1e-9, "{it}");
            let tokens = it["tokens"].as_u64().unwrap();
            assert!((1..=12).contains(&tokens) || it["recordS"].is_null(), "{it}");
            assert!(it["answer"].is_string() && it["containsFact"].is_boolean(), "{it}");
        }
        assert_eq!(a["latencyS"]["checkpoints"], 2);
        assert!(
            a["latencyS"]["record"]["p50"].is_number() && a["latencyS"]["span"]["p99"].is_number(),
            "{}",
            a["latencyS"]
        );
        // The teacher-forced table is still there.
        assert_eq!(v["queries"].as_array().unwrap().len(), 2 * 3);
    }
}
