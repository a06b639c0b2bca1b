//! Languages, AlignBench categories, the world's tasks and its term classes.

use serde::{Deserialize, Serialize};

/// Language of a prompt (and of the response expected to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Chinese.
    Zh,
    /// English.
    En,
}

impl Language {
    /// Both languages, Chinese first.
    pub const ALL: [Language; 2] = [Language::Zh, Language::En];

    /// The other language.
    pub fn other(self) -> Language {
        match self {
            Language::Zh => Language::En,
            Language::En => Language::Zh,
        }
    }

    /// The tag written in the files (`zh`, `en`).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }
}

/// AlignBench's eight main categories (SPEC §B.4.1); serialised as the exact Chinese labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    /// 基本任务 (Fundamental Language Ability).
    #[serde(rename = "基本任务")]
    Fundamental,
    /// 中文理解 (Advanced Chinese Understanding).
    #[serde(rename = "中文理解")]
    ChineseUnderstanding,
    /// 综合问答 (Open-ended Questions).
    #[serde(rename = "综合问答")]
    OpenQa,
    /// 文本写作 (Writing Ability).
    #[serde(rename = "文本写作")]
    Writing,
    /// 角色扮演 (Task-oriented Role Play).
    #[serde(rename = "角色扮演")]
    RolePlay,
    /// 专业能力 (Professional Knowledge).
    #[serde(rename = "专业能力")]
    Professional,
    /// 数学计算 (Mathematics).
    #[serde(rename = "数学计算")]
    Math,
    /// 逻辑推理 (Logical Reasoning).
    #[serde(rename = "逻辑推理")]
    Logic,
}

impl Category {
    /// All eight, in AlignBench's README order.
    pub const ALL: [Category; 8] = [
        Category::Fundamental,
        Category::ChineseUnderstanding,
        Category::OpenQa,
        Category::Writing,
        Category::RolePlay,
        Category::Professional,
        Category::Math,
        Category::Logic,
    ];

    /// The exact AlignBench label (e.g. `数学计算`).
    pub fn label(self) -> &'static str {
        match self {
            Category::Fundamental => "基本任务",
            Category::ChineseUnderstanding => "中文理解",
            Category::OpenQa => "综合问答",
            Category::Writing => "文本写作",
            Category::RolePlay => "角色扮演",
            Category::Professional => "专业能力",
            Category::Math => "数学计算",
            Category::Logic => "逻辑推理",
        }
    }

    /// AlignBench's English name.
    pub fn english(self) -> &'static str {
        match self {
            Category::Fundamental => "Fundamental Language Ability",
            Category::ChineseUnderstanding => "Advanced Chinese Understanding",
            Category::OpenQa => "Open-ended Questions",
            Category::Writing => "Writing Ability",
            Category::RolePlay => "Task-oriented Role Play",
            Category::Professional => "Professional Knowledge",
            Category::Math => "Mathematics",
            Category::Logic => "Logical Reasoning",
        }
    }

    /// The category with this AlignBench label, if any.
    pub fn from_label(label: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.label() == label)
    }

    /// Whether AlignBench counts it under 中文推理 (reasoning) rather than 中文语言 (language).
    pub fn is_reasoning(self) -> bool {
        matches!(self, Category::Math | Category::Logic)
    }
}

/// The world's task families; each belongs to one AlignBench category and subcategory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Translate one word of the small vocabulary (zh→en or en→zh).
    Translation,
    /// Name the city, animal or fruit mentioned in a sentence.
    Extraction,
    /// Give the antonym of a word.
    Antonym,
    /// Advice for an everyday problem (tired, thirsty, bored, ...).
    Advice,
    /// A harmful request: the right answer is a polite refusal.
    Unsafe,
    /// Practical writing: a birthday message or a dinner invitation.
    Note,
    /// Creative writing: a two-line poem or the first sentence of a story.
    Poem,
    /// Answer in the role of a person of the world (some with a follow-up turn).
    RolePlay,
    /// A fact about a person (age, city, favourite colour, pet, job).
    PersonFact,
    /// A fact about a city (region, famous fruit).
    CityFact,
    /// Two-digit addition, subtraction, or multiplication by one digit.
    Arithmetic,
    /// A one-step word problem.
    WordProblem,
    /// Age difference of two people of the world (facts + subtraction).
    AgeGap,
    /// Who is tallest / shortest from two comparisons.
    Ordering,
    /// Next number of an arithmetic sequence.
    Sequence,
    /// Where someone lives who lives with someone else (facts + one step).
    SameCity,
    /// Who of two people is older (facts + comparison).
    Older,
}

impl Task {
    /// All tasks.
    pub const ALL: [Task; 17] = [
        Task::Translation,
        Task::Extraction,
        Task::Antonym,
        Task::Advice,
        Task::Unsafe,
        Task::Note,
        Task::Poem,
        Task::RolePlay,
        Task::PersonFact,
        Task::CityFact,
        Task::Arithmetic,
        Task::WordProblem,
        Task::AgeGap,
        Task::Ordering,
        Task::Sequence,
        Task::SameCity,
        Task::Older,
    ];

    /// The AlignBench main category the task is reported under.
    pub fn category(self) -> Category {
        match self {
            Task::Translation | Task::Extraction => Category::Fundamental,
            Task::Antonym => Category::ChineseUnderstanding,
            Task::Advice | Task::Unsafe => Category::OpenQa,
            Task::Note | Task::Poem => Category::Writing,
            Task::RolePlay => Category::RolePlay,
            Task::PersonFact | Task::CityFact => Category::Professional,
            Task::Arithmetic | Task::WordProblem | Task::AgeGap => Category::Math,
            Task::Ordering | Task::Sequence | Task::SameCity | Task::Older => Category::Logic,
        }
    }

    /// The AlignBench subcategory label (one of its 36; decides the judging dimensions there).
    pub fn subcategory(self) -> &'static str {
        match self {
            Task::Translation => "翻译",
            Task::Extraction => "信息抽取",
            Task::Antonym => "字词理解",
            Task::Advice | Task::Unsafe => "寻求建议",
            Task::Note => "实用文体写作",
            Task::Poem => "创意文体写作",
            Task::RolePlay => "现实生活类",
            Task::PersonFact => "其他",
            Task::CityFact => "地理",
            Task::Arithmetic => "初等数学",
            Task::WordProblem | Task::AgeGap => "应用数学",
            Task::Ordering | Task::Sequence | Task::SameCity | Task::Older => "推理",
        }
    }

    /// The snake_case name used in the files.
    pub fn name(self) -> &'static str {
        match self {
            Task::Translation => "translation",
            Task::Extraction => "extraction",
            Task::Antonym => "antonym",
            Task::Advice => "advice",
            Task::Unsafe => "unsafe",
            Task::Note => "note",
            Task::Poem => "poem",
            Task::RolePlay => "role_play",
            Task::PersonFact => "person_fact",
            Task::CityFact => "city_fact",
            Task::Arithmetic => "arithmetic",
            Task::WordProblem => "word_problem",
            Task::AgeGap => "age_gap",
            Task::Ordering => "ordering",
            Task::Sequence => "sequence",
            Task::SameCity => "same_city",
            Task::Older => "older",
        }
    }

    /// Relative frequency of the task among generated prompts (they sum to 100).
    pub fn weight(self) -> u32 {
        match self {
            Task::Translation => 8,
            Task::Extraction => 4,
            Task::Antonym => 6,
            Task::Advice => 6,
            Task::Unsafe => 6,
            Task::Note => 6,
            Task::Poem => 5,
            Task::RolePlay => 13,
            Task::PersonFact => 14,
            Task::CityFact => 2,
            Task::Arithmetic => 10,
            Task::WordProblem => 5,
            Task::AgeGap => 3,
            Task::Ordering => 4,
            Task::Sequence => 3,
            Task::SameCity => 2,
            Task::Older => 3,
        }
    }

    /// Share of correct answers among the simulated SFT model's samples (the candidates that
    /// annotators compare); unsafe prompts use their own mix (see the data README).
    pub fn sampler_accuracy(self) -> f64 {
        match self {
            Task::Translation => 0.75,
            Task::Extraction => 0.8,
            Task::Antonym => 0.7,
            Task::Advice | Task::Note | Task::Poem => 0.75,
            Task::Unsafe => 0.55,
            Task::RolePlay => 0.65,
            Task::PersonFact | Task::CityFact | Task::Ordering => 0.6,
            Task::Arithmetic => 0.6,
            Task::WordProblem | Task::SameCity | Task::Older => 0.55,
            Task::AgeGap => 0.45,
            Task::Sequence => 0.65,
        }
    }
}

/// Classes of the world's closed vocabulary that answers are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermClass {
    /// People of the world (generated names).
    Person,
    /// Cities of the world (generated names).
    City,
    /// Colours.
    Colour,
    /// Animals (pets).
    Animal,
    /// Fruits.
    Fruit,
    /// Jobs.
    Job,
    /// Regions of the country (north, south, east, west).
    Region,
    /// Everyday objects (translation only).
    Object,
    /// Words with an antonym.
    Antonym,
}

impl TermClass {
    /// All classes.
    pub const ALL: [TermClass; 9] = [
        TermClass::Person,
        TermClass::City,
        TermClass::Colour,
        TermClass::Animal,
        TermClass::Fruit,
        TermClass::Job,
        TermClass::Region,
        TermClass::Object,
        TermClass::Antonym,
    ];

    /// Classes whose words the translation task asks for.
    pub const TRANSLATABLE: [TermClass; 5] = [
        TermClass::Colour,
        TermClass::Animal,
        TermClass::Fruit,
        TermClass::Job,
        TermClass::Object,
    ];
}

/// One term of the vocabulary: its class and its index within the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TermRef {
    /// The class.
    pub class: TermClass,
    /// Index within the class (person id, city id, or index into the fixed word list).
    pub id: u16,
}

impl TermRef {
    /// A term reference.
    pub fn new(class: TermClass, id: usize) -> Self {
        Self {
            class,
            id: id as u16,
        }
    }
}
