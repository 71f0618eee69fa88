//! What one optimization needs, and its one-time validation.

use std::collections::BTreeSet;
use std::sync::Arc;

use metaprompt_core::{
    BatchExecutor, ChatModel, Checkpoint, DataMapper, Evaluator, GenerateParams, Prompt, Role, Row,
};
use metaprompt_data::{Dataset, SplitConfig, Splits};

use crate::EngineError;
use crate::config::{DEFAULT_TASK_DESCRIPTION, OptimizerConfig, TeacherParams};
use crate::demos::DemoTemplate;
use crate::guards::GuardContext;

/// Where the rows come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// One dataset, split by fractions with a seed.
    Dataset(Dataset, SplitConfig),
    /// Splits made by the caller.
    Splits(Splits),
}

/// Everything one optimization needs besides the teacher.
///
/// Mirrors the Python original's `optimize(evaluator, data_mapper, dataset, initial_prompts,
/// task_description, num_rounds=5, eval_subset_size=40)`, plus the student the prompt is for;
/// `num_rounds`, `eval_subset_size` and every other knob are in [`OptimizerConfig`].
#[derive(Clone)]
pub struct OptimizeRequest {
    /// The model the prompt is optimized for.
    pub student: Arc<dyn ChatModel>,
    /// The student's call parameters.
    pub student_params: GenerateParams,
    /// How the teacher samples.
    pub teacher_params: TeacherParams,
    /// Scores outputs.
    pub evaluator: Arc<dyn Evaluator>,
    /// Builds evaluator inputs.
    pub data_mapper: Arc<dyn DataMapper>,
    /// The rows.
    pub data: DataSource,
    /// Fields no prompt may read (added to the dataset's own label fields).
    pub label_fields: Vec<String>,
    /// Every initial prompt is scored on val; the best one starts.
    pub initial_prompts: Vec<Prompt>,
    /// What the prompt is for, in a sentence.
    pub task_description: String,
    /// Every knob.
    pub config: OptimizerConfig,
    /// The run's id (checkpoints are stored under it). Default: derived from the seed.
    pub run_id: Option<String>,
    /// Continue from this checkpoint.
    pub resume: Option<Checkpoint>,
    /// Provider batch engines for the student's and the judges' calls, matched to a model by
    /// [`BatchExecutor::model_id`]; used for whole-split scoring as `config.batch` says.
    pub batch: Vec<Arc<dyn BatchExecutor>>,
}

impl std::fmt::Debug for OptimizeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptimizeRequest")
            .field("student", &self.student.id())
            .field("evaluator", &self.evaluator.name())
            .field(
                "initial_prompts",
                &self
                    .initial_prompts
                    .iter()
                    .map(Prompt::text)
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OptimizeRequest {
    /// A request with the Python original's defaults.
    pub fn new(
        student: Arc<dyn ChatModel>,
        evaluator: Arc<dyn Evaluator>,
        data_mapper: Arc<dyn DataMapper>,
        data: DataSource,
        initial_prompts: Vec<Prompt>,
    ) -> Self {
        OptimizeRequest {
            student,
            student_params: GenerateParams {
                temperature: Some(0.0),
                ..GenerateParams::default()
            },
            teacher_params: TeacherParams::default(),
            evaluator,
            data_mapper,
            data,
            label_fields: Vec::new(),
            initial_prompts,
            task_description: DEFAULT_TASK_DESCRIPTION.to_string(),
            config: OptimizerConfig::default(),
            run_id: None,
            resume: None,
            batch: Vec::new(),
        }
    }

    /// Checks the request once, before any call: the knobs, the prompts against the data, the
    /// key map. Returns the splits the run works on, the guards, and the warnings to show.
    pub fn check(&self) -> Result<Checked, EngineError> {
        let mut problems = self.config.problems();
        problems.extend(self.teacher_params.problems());
        if !problems.is_empty() {
            return Err(EngineError::Config(problems.join("; ")));
        }
        if self.initial_prompts.is_empty() {
            return Err(EngineError::NoInitialPrompts);
        }
        let (splits, mut labels) = match &self.data {
            DataSource::Dataset(ds, cfg) => (ds.split(cfg)?, ds.label_fields().to_vec()),
            DataSource::Splits(s) => (s.clone(), Vec::new()),
        };
        labels.extend(self.label_fields.iter().cloned());
        labels.sort();
        labels.dedup();
        if splits.train.is_empty() {
            return Err(EngineError::Data(metaprompt_data::DataError::Split(
                "the train split is empty".into(),
            )));
        }
        let all = Dataset::new(all_rows(&splits));
        for (i, p) in self.initial_prompts.iter().enumerate() {
            check_prompt(p, &labels, i)?;
            all.require_fields(&p.variables(), "the initial prompt")?;
        }
        all.require_fields(&self.data_mapper.source_fields(), "the key map")?;
        let first = &self.initial_prompts[0];
        let editable: BTreeSet<Role> = match &self.config.editable {
            Some(roles) => roles.iter().copied().collect(),
            None => first.messages().iter().map(|m| m.role).collect(),
        };
        if !first.messages().iter().any(|m| editable.contains(&m.role)) {
            return Err(EngineError::Config(format!(
                "`editable` names {}, but the prompt has no such message; the teacher could change nothing",
                editable
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let longest = self
            .initial_prompts
            .iter()
            .map(Prompt::chars)
            .max()
            .unwrap_or(0);
        let mut guards = GuardContext {
            required: first.variables().iter().map(|s| s.to_string()).collect(),
            available: all.schema().fields.keys().cloned().collect(),
            labels: labels.iter().cloned().collect(),
            max_chars: self
                .config
                .max_prompt_chars
                .unwrap_or((longest * 4).max(2000)),
            editable,
            label_values: label_values(&splits.train, &labels),
            min_instruction_words: self.config.min_instruction_words,
            foreign_words: foreign_words(&self.task_description, &self.initial_prompts),
            ..GuardContext::default()
        };
        if self.config.forbid_reference_copy {
            for r in &splits.train {
                for l in &labels {
                    if let Some(t) = r.text(l) {
                        guards.add_reference(&t);
                    }
                }
            }
        }
        let demo_template = DemoTemplate::new(
            self.config.demo_template.as_deref(),
            &first.variables(),
            &labels,
        )?;
        let warnings = splits.warnings.clone();
        Ok(Checked {
            request: self.clone(),
            splits,
            guards,
            labels,
            demo_template,
            warnings,
        })
    }
}

/// The worked example's topic words that neither the task description nor an initial prompt
/// says.
fn foreign_words(task: &str, prompts: &[Prompt]) -> std::collections::BTreeSet<String> {
    let mut own = task.to_lowercase();
    for p in prompts {
        for m in p.messages() {
            own.push('\n');
            own.push_str(&m.template.source().to_lowercase());
        }
    }
    let own: std::collections::BTreeSet<&str> = own
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    crate::brief::system::EXAMPLE_TOPIC
        .iter()
        .filter(|w| !own.contains(**w))
        .map(|w| w.to_string())
        .collect()
}

/// The words of the label fields' values in train (lowercased), when the labels are a small
/// set of short values (a classification task); empty otherwise.
fn label_values(
    train: &[metaprompt_core::Row],
    labels: &[String],
) -> std::collections::BTreeSet<String> {
    let mut values = std::collections::BTreeSet::new();
    for r in train {
        for l in labels {
            if let Some(t) = r.text(l) {
                let t = t.trim().to_lowercase();
                if t.split_whitespace().count() > 3 {
                    return Default::default();
                }
                values.insert(t);
                if values.len() > 20 {
                    return Default::default();
                }
            }
        }
    }
    values
        .iter()
        .flat_map(|v| {
            v.split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A request that passed [`OptimizeRequest::check`], with what the check prepared.
#[derive(Clone)]
pub struct Checked {
    pub(crate) request: OptimizeRequest,
    pub(crate) splits: Splits,
    pub(crate) guards: GuardContext,
    pub(crate) labels: Vec<String>,
    pub(crate) demo_template: DemoTemplate,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("request", &self.request)
            .field("splits", &self.sizes())
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Checked {
    /// Things the user should know before a run (small data, empty splits).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Rows in train, val and test.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.splits.train.len(),
            self.splits.val.len(),
            self.splits.test.len(),
        )
    }

    /// The request.
    pub fn request(&self) -> &OptimizeRequest {
        &self.request
    }

    /// Sets the checkpoint to resume from.
    pub fn resume_from(&mut self, checkpoint: Option<Checkpoint>) {
        self.request.resume = checkpoint;
    }

    /// Sets when whole-split scoring uses provider batches (`metaprompt eval --batch`).
    pub fn set_batch_mode(&mut self, mode: crate::BatchMode) {
        self.request.config.batch = mode;
    }

    /// Sets the run id.
    pub fn set_run_id(&mut self, id: impl Into<String>) {
        self.request.run_id = Some(id.into());
    }

    /// The rows of a split: `train`, `val`, `test` or `all`.
    pub fn rows(&self, split: &str) -> Vec<Row> {
        match split {
            "train" => self.splits.train.clone(),
            "val" => self.splits.val.clone(),
            "test" => self.splits.test.clone(),
            _ => all_rows(&self.splits),
        }
    }

    /// Checks a prompt given later (to `evaluate_prompt`) like an initial prompt.
    pub fn check_prompt(&self, prompt: &Prompt, rows: &[Row]) -> Result<(), EngineError> {
        check_prompt(prompt, &self.labels, 0)?;
        Dataset::new(rows.to_vec()).require_fields(&prompt.variables(), "the prompt")?;
        Ok(())
    }
}

fn all_rows(s: &Splits) -> Vec<Row> {
    s.train
        .iter()
        .chain(&s.val)
        .chain(&s.test)
        .cloned()
        .collect()
}

/// The label check every prompt given by the user passes, in one place.
fn check_prompt(prompt: &Prompt, labels: &[String], index: usize) -> Result<(), EngineError> {
    if let Some(field) = prompt
        .variables()
        .into_iter()
        .find(|v| labels.iter().any(|l| l == v))
    {
        return Err(EngineError::LabelInPrompt {
            index,
            field: field.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_examples_topic_is_foreign_unless_the_users_task_says_it() {
        let p = |t: &str| vec![metaprompt_core::Prompt::parse(t).unwrap()];
        let words = super::foreign_words("Classify adjectives.", &p("Is {word} positive?"));
        assert!(words.contains("ticket") && words.contains("routine"));
        // A user whose task is about tickets may write about tickets.
        let words = super::foreign_words("Triage support tickets.", &p("Ticket: {ticket}"));
        assert!(!words.contains("ticket") && !words.contains("tickets"));
        assert!(words.contains("routine"));
    }
}
