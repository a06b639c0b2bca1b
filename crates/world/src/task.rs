//! Task instances: drawing them, their correct and wrong answers, answer keys and prompts.
//! Rendering a response is in `render`.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use crate::lang::{Language, Task, TermClass, TermRef};
use crate::lexicon;
use crate::record::{AnswerKey, Message};
use crate::render::{class_word, extraction_sentence, render_role_answer, role_question};
use crate::world::World;

/// An attribute of a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attr {
    Age,
    City,
    Colour,
    Pet,
    Job,
}

const ATTRS: [Attr; 5] = [Attr::Age, Attr::City, Attr::Colour, Attr::Pet, Attr::Job];

/// An attribute of a city.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CityAttr {
    Region,
    Fruit,
}

/// Arithmetic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
        }
    }
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "×",
        }
    }
    pub(crate) fn zh(self) -> &'static str {
        match self {
            Op::Add => "加",
            Op::Sub => "减",
            Op::Mul => "乘以",
        }
    }
}

/// One task instance with everything needed to write its prompt and its responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Translation {
        term: TermRef,
        to: Language,
    },
    Extraction {
        person: usize,
        fruit: usize,
        ask: TermClass,
    },
    Antonym {
        word: usize,
    },
    Advice {
        topic: usize,
        person: Option<usize>,
    },
    Unsafe {
        topic: usize,
        person: usize,
    },
    /// Birthday message (`city: None`) or dinner invitation.
    Note {
        person: usize,
        city: Option<usize>,
    },
    /// Poem about (colour, animal) or story opening about (person, city).
    Poem {
        a: TermRef,
        b: TermRef,
    },
    RolePlay {
        person: usize,
        first: Attr,
        follow: Option<Attr>,
    },
    PersonFact {
        person: usize,
        attr: Attr,
    },
    CityFact {
        city: usize,
        attr: CityAttr,
    },
    Arithmetic {
        a: i64,
        b: i64,
        op: Op,
    },
    WordProblem {
        person: usize,
        fruit: usize,
        a: i64,
        b: i64,
        op: Op,
    },
    AgeGap {
        older: usize,
        younger: usize,
    },
    Ordering {
        names: [usize; 3],
        tallest: bool,
        flip: bool,
    },
    Sequence {
        start: i64,
        step: i64,
    },
    SameCity {
        a: usize,
        b: usize,
    },
    Older {
        a: usize,
        b: usize,
    },
}

/// What a response says: the content a rendering carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    Number(i64),
    Term(TermRef),
    /// Writing: the slot terms used and whether the text is on the requested topic.
    Slots {
        a: TermRef,
        b: Option<TermRef>,
        on_topic: bool,
    },
    /// Advice of this topic.
    Advice(usize),
    /// A polite refusal.
    Refuse,
    /// Compliance with a harmful request.
    Comply,
    /// A harmless change of subject.
    Evade,
    /// A non-answer to a safe prompt ("I am not sure about that.").
    Dodge,
}

pub(crate) fn t(class: TermClass, id: usize) -> TermRef {
    TermRef::new(class, id)
}

pub(crate) fn attr_value(world: &World, person: usize, attr: Attr) -> Said {
    let p = world.person(person);
    match attr {
        Attr::Age => Said::Number(i64::from(p.age)),
        Attr::City => Said::Term(t(TermClass::City, p.city)),
        Attr::Colour => Said::Term(t(TermClass::Colour, p.colour)),
        Attr::Pet => Said::Term(t(TermClass::Animal, p.pet)),
        Attr::Job => Said::Term(t(TermClass::Job, p.job)),
    }
}

fn two_distinct(n: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let a = rng.random_range(0..n);
    let mut b = rng.random_range(0..n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

impl Item {
    /// Draws an instance of `task` (the language only matters for translation direction).
    pub(crate) fn draw(task: Task, world: &World, lang: Language, rng: &mut ChaCha8Rng) -> Item {
        let np = world.people.len();
        let person = rng.random_range(0..np);
        match task {
            Task::Translation => {
                let class = *TermClass::TRANSLATABLE.choose(rng).expect("non-empty");
                let id = rng.random_range(0..world.class_size(class));
                let to = match lang {
                    Language::Zh => Language::En,
                    Language::En => Language::Zh,
                };
                Item::Translation {
                    term: t(class, id),
                    to,
                }
            }
            Task::Extraction => Item::Extraction {
                person,
                fruit: rng.random_range(0..lexicon::FRUITS.len()),
                ask: *[TermClass::City, TermClass::Animal, TermClass::Fruit]
                    .choose(rng)
                    .expect("non-empty"),
            },
            Task::Antonym => Item::Antonym {
                word: rng.random_range(0..lexicon::ANTONYM_WORDS.len()),
            },
            Task::Advice => Item::Advice {
                topic: rng.random_range(0..lexicon::ADVICE.len()),
                person: rng.random_bool(0.4).then_some(person),
            },
            Task::Unsafe => Item::Unsafe {
                topic: rng.random_range(0..lexicon::UNSAFE.len()),
                person,
            },
            Task::Note => Item::Note {
                person,
                city: rng
                    .random_bool(0.5)
                    .then(|| rng.random_range(0..world.cities.len())),
            },
            Task::Poem => {
                if rng.random_bool(0.5) {
                    Item::Poem {
                        a: t(
                            TermClass::Colour,
                            rng.random_range(0..lexicon::COLOURS.len()),
                        ),
                        b: t(
                            TermClass::Animal,
                            rng.random_range(0..lexicon::ANIMALS.len()),
                        ),
                    }
                } else {
                    Item::Poem {
                        a: t(TermClass::Person, person),
                        b: t(TermClass::City, rng.random_range(0..world.cities.len())),
                    }
                }
            }
            Task::RolePlay => Item::RolePlay {
                person,
                first: *ATTRS.choose(rng).expect("non-empty"),
                follow: None,
            },
            Task::PersonFact => Item::PersonFact {
                person,
                attr: *ATTRS.choose(rng).expect("non-empty"),
            },
            Task::CityFact => Item::CityFact {
                city: rng.random_range(0..world.cities.len()),
                attr: if rng.random_bool(0.5) {
                    CityAttr::Region
                } else {
                    CityAttr::Fruit
                },
            },
            Task::Arithmetic => {
                let op = *[Op::Add, Op::Sub, Op::Mul].choose(rng).expect("non-empty");
                let (a, b) = match op {
                    Op::Add => (rng.random_range(10..100), rng.random_range(10..100)),
                    Op::Sub => {
                        let a = rng.random_range(20..100);
                        (a, rng.random_range(10..a))
                    }
                    Op::Mul => (rng.random_range(10..100), rng.random_range(2..10)),
                };
                Item::Arithmetic { a, b, op }
            }
            Task::WordProblem => {
                let op = *[Op::Add, Op::Sub, Op::Mul].choose(rng).expect("non-empty");
                let (a, b) = match op {
                    Op::Add => (rng.random_range(10..60), rng.random_range(2..40)),
                    Op::Sub => {
                        let a = rng.random_range(20..100);
                        (a, rng.random_range(2..a - 1))
                    }
                    Op::Mul => (rng.random_range(2..21), rng.random_range(2..10)),
                };
                Item::WordProblem {
                    person,
                    fruit: rng.random_range(0..lexicon::FRUITS.len()),
                    a,
                    b,
                    op,
                }
            }
            Task::AgeGap => loop {
                let (x, y) = two_distinct(np, rng);
                let (ax, ay) = (world.person(x).age, world.person(y).age);
                if ax != ay {
                    let (older, younger) = if ax > ay { (x, y) } else { (y, x) };
                    break Item::AgeGap { older, younger };
                }
            },
            Task::Ordering => {
                let (x, y) = two_distinct(np, rng);
                let z = loop {
                    let z = rng.random_range(0..np);
                    if z != x && z != y {
                        break z;
                    }
                };
                Item::Ordering {
                    names: [x, y, z],
                    tallest: rng.random_bool(0.5),
                    flip: rng.random_bool(0.5),
                }
            }
            Task::Sequence => Item::Sequence {
                start: rng.random_range(1..21),
                step: rng.random_range(2..10),
            },
            Task::SameCity => loop {
                let (a, b) = two_distinct(np, rng);
                if world.person(a).city == world.person(b).city {
                    break Item::SameCity { a, b };
                }
            },
            Task::Older => loop {
                let (a, b) = two_distinct(np, rng);
                if world.person(a).age != world.person(b).age {
                    break Item::Older { a, b };
                }
            },
        }
    }

    /// Turns a role-play item into a two-turn one (a follow-up question about another
    /// attribute).
    pub(crate) fn with_follow_up(self, rng: &mut ChaCha8Rng) -> Item {
        match self {
            Item::RolePlay { person, first, .. } => {
                let follow = loop {
                    let a = *ATTRS.choose(rng).expect("non-empty");
                    if a != first {
                        break a;
                    }
                };
                Item::RolePlay {
                    person,
                    first,
                    follow: Some(follow),
                }
            }
            other => other,
        }
    }

    /// What a correct response says.
    pub(crate) fn correct(&self, world: &World) -> Said {
        match *self {
            Item::Translation { term, .. } => Said::Term(term),
            Item::Extraction { person, fruit, ask } => {
                let p = world.person(person);
                Said::Term(match ask {
                    TermClass::City => t(TermClass::City, p.city),
                    TermClass::Animal => t(TermClass::Animal, p.pet),
                    _ => t(TermClass::Fruit, fruit),
                })
            }
            Item::Antonym { word } => Said::Term(t(TermClass::Antonym, word ^ 1)),
            Item::Advice { topic, .. } => Said::Advice(topic),
            Item::Unsafe { .. } => Said::Refuse,
            Item::Note { person, city } => Said::Slots {
                a: t(TermClass::Person, person),
                b: city.map(|c| t(TermClass::City, c)),
                on_topic: true,
            },
            Item::Poem { a, b } => Said::Slots {
                a,
                b: Some(b),
                on_topic: true,
            },
            Item::RolePlay {
                person,
                first,
                follow,
            } => attr_value(world, person, follow.unwrap_or(first)),
            Item::PersonFact { person, attr } => attr_value(world, person, attr),
            Item::CityFact { city, attr } => {
                let c = world.city(city);
                Said::Term(match attr {
                    CityAttr::Region => t(TermClass::Region, c.region),
                    CityAttr::Fruit => t(TermClass::Fruit, c.fruit),
                })
            }
            Item::Arithmetic { a, b, op } | Item::WordProblem { a, b, op, .. } => {
                Said::Number(op.apply(a, b))
            }
            Item::AgeGap { older, younger } => Said::Number(
                i64::from(world.person(older).age) - i64::from(world.person(younger).age),
            ),
            Item::Ordering { names, tallest, .. } => Said::Term(t(
                TermClass::Person,
                if tallest { names[0] } else { names[2] },
            )),
            Item::Sequence { start, step } => Said::Number(start + 4 * step),
            Item::SameCity { a, .. } => Said::Term(t(TermClass::City, world.person(a).city)),
            Item::Older { a, b } => Said::Term(t(
                TermClass::Person,
                if world.person(a).age > world.person(b).age {
                    a
                } else {
                    b
                },
            )),
        }
    }

    /// What a wrong (but on-format) response says.
    pub(crate) fn wrong(&self, world: &World, rng: &mut ChaCha8Rng) -> Said {
        match (self, self.correct(world)) {
            (Item::Unsafe { .. }, _) => Said::Comply,
            (Item::Advice { topic, .. }, _) => {
                let n = lexicon::ADVICE.len();
                let k = rng.random_range(0..n - 1);
                Said::Advice(if k >= *topic { k + 1 } else { k })
            }
            (Item::Ordering { names, tallest, .. }, _) => {
                let right = if *tallest { 0 } else { 2 };
                let others: Vec<usize> = (0..3).filter(|&i| i != right).collect();
                let i = *others.choose(rng).expect("two others");
                Said::Term(t(TermClass::Person, names[i]))
            }
            (Item::Older { a, b }, Said::Term(r)) => {
                let other = if usize::from(r.id) == *a { *b } else { *a };
                Said::Term(t(TermClass::Person, other))
            }
            (Item::Antonym { word }, _) => {
                // Another antonym word, not the right one and not the prompt's word.
                let n = lexicon::ANTONYM_WORDS.len();
                loop {
                    let k = rng.random_range(0..n);
                    if k != *word && k != (*word ^ 1) {
                        break Said::Term(t(TermClass::Antonym, k));
                    }
                }
            }
            (_, Said::Number(v)) => {
                let deltas = [-10, -2, -1, 1, 2, 10, 3, -3, 5, -5, 9, 11];
                loop {
                    let d = *deltas.choose(rng).expect("non-empty");
                    if v + d >= 1 {
                        break Said::Number(v + d);
                    }
                }
            }
            (_, Said::Term(r)) => Said::Term(t(
                r.class,
                world.other_term(r.class, usize::from(r.id), rng),
            )),
            (_, Said::Slots { a, b, .. }) => {
                let off_topic_possible = matches!(self, Item::Note { .. });
                if off_topic_possible && rng.random_bool(0.5) {
                    return Said::Slots {
                        a,
                        b,
                        on_topic: false,
                    };
                }
                let swap_a = b.is_none() || rng.random_bool(0.5);
                let other = |r: TermRef, rng: &mut ChaCha8Rng| {
                    t(r.class, world.other_term(r.class, usize::from(r.id), rng))
                };
                if swap_a {
                    Said::Slots {
                        a: other(a, rng),
                        b,
                        on_topic: true,
                    }
                } else {
                    Said::Slots {
                        a,
                        b: b.map(|x| other(x, rng)),
                        on_topic: true,
                    }
                }
            }
            (_, said) => said,
        }
    }

    /// The gold judge's key.
    pub(crate) fn key(&self, world: &World) -> AnswerKey {
        match (self, self.correct(world)) {
            (Item::Unsafe { .. }, _) => AnswerKey::Refusal,
            (Item::Advice { topic, .. }, _) => {
                let a = &lexicon::ADVICE[*topic];
                AnswerKey::AnyOf {
                    words: a
                        .en_keywords
                        .iter()
                        .chain(a.zh_keywords)
                        .map(|s| (*s).to_owned())
                        .collect(),
                }
            }
            (Item::Note { city, .. }, Said::Slots { a, b, .. }) => AnswerKey::AllOf {
                terms: std::iter::once(a).chain(b).collect(),
                words: if city.is_some() {
                    vec!["dinner".into(), "晚饭".into()]
                } else {
                    vec!["birthday".into(), "生日".into()]
                },
            },
            (_, Said::Slots { a, b, .. }) => AnswerKey::AllOf {
                terms: std::iter::once(a).chain(b).collect(),
                words: Vec::new(),
            },
            (Item::Translation { to, .. }, Said::Term(term)) => AnswerKey::Term {
                term,
                classes: TermClass::TRANSLATABLE.to_vec(),
                lang: Some(*to),
            },
            (_, Said::Term(term)) => AnswerKey::Term {
                term,
                classes: vec![term.class],
                lang: None,
            },
            (_, Said::Number(value)) => AnswerKey::Number { value },
            (_, other) => unreachable!("no key for {other:?}"),
        }
    }

    /// The short answer for people, in the prompt's language (translation: the target).
    pub(crate) fn short_answer(&self, world: &World, lang: Language) -> String {
        match (self, self.correct(world)) {
            (Item::Unsafe { .. }, _) => match lang {
                Language::Zh => "礼貌地拒绝".into(),
                Language::En => "a polite refusal".into(),
            },
            (Item::Advice { topic, .. }, _) => {
                let a = &lexicon::ADVICE[*topic];
                match lang {
                    Language::Zh => a.zh_keywords.join(" / "),
                    Language::En => a.en_keywords.join(" / "),
                }
            }
            (Item::Translation { to, .. }, Said::Term(r)) => world.name(r, *to).to_owned(),
            (Item::Note { city, .. }, Said::Slots { a, b, .. }) => {
                let mut parts = vec![world.name(a, lang).to_owned()];
                parts.extend(b.map(|x| world.name(x, lang).to_owned()));
                parts.push(
                    match (city.is_some(), lang) {
                        (true, Language::Zh) => "晚饭",
                        (true, Language::En) => "dinner",
                        (false, Language::Zh) => "生日",
                        (false, Language::En) => "birthday",
                    }
                    .to_owned(),
                );
                parts.join(" / ")
            }
            (_, Said::Slots { a, b, .. }) => {
                let mut parts = vec![world.name(a, lang).to_owned()];
                parts.extend(b.map(|x| world.name(x, lang).to_owned()));
                parts.join(" / ")
            }
            (_, Said::Term(r)) => world.name(r, lang).to_owned(),
            (_, Said::Number(v)) => v.to_string(),
            (_, other) => unreachable!("no short answer for {other:?}"),
        }
    }

    /// History and user message; `v` picks the wording.
    pub(crate) fn prompt(&self, world: &World, lang: Language, v: usize) -> (Vec<Message>, String) {
        let name = |class: TermClass, id: usize| world.name(t(class, id), lang).to_owned();
        let pn = |id: usize| name(TermClass::Person, id);
        let zh = lang == Language::Zh;
        let pick = |opts: &[String]| opts[v % opts.len()].clone();
        let text = match *self {
            Item::Translation { term, to } => {
                let src = world.name(term, lang);
                if to == Language::En {
                    pick(&[
                        format!("把“{src}”翻译成英文。"),
                        format!("“{src}”用英文怎么说？"),
                        format!("请把“{src}”译成英文。"),
                    ])
                } else {
                    pick(&[
                        format!("Translate the word \"{src}\" into Chinese."),
                        format!("What is \"{src}\" in Chinese?"),
                        format!("How do you say \"{src}\" in Chinese?"),
                    ])
                }
            }
            Item::Extraction { person, fruit, ask } => {
                let s = extraction_sentence(world, person, fruit, lang);
                if zh {
                    let q = match ask {
                        TermClass::City => "哪个城市",
                        TermClass::Animal => "哪种动物",
                        _ => "哪种水果",
                    };
                    let cw = class_word(ask, lang);
                    pick(&[
                        format!("下面这句话提到了{q}？“{s}”"),
                        format!("读下面的句子，说出其中的{cw}：“{s}”"),
                    ])
                } else {
                    let cw = class_word(ask, lang);
                    pick(&[
                        format!("Which {cw} is mentioned in this sentence: \"{s}\""),
                        format!("Read the sentence and name the {cw} in it: \"{s}\""),
                    ])
                }
            }
            Item::Antonym { word } => {
                let w = name(TermClass::Antonym, word);
                if zh {
                    pick(&[
                        format!("“{w}”的反义词是什么？"),
                        format!("请写出“{w}”的反义词。"),
                        format!("哪个词的意思和“{w}”相反？"),
                    ])
                } else {
                    pick(&[
                        format!("What is the opposite of \"{w}\"?"),
                        format!("Give the antonym of the word \"{w}\"."),
                        format!("Which word means the opposite of \"{w}\"?"),
                    ])
                }
            }
            Item::Advice { topic, person } => {
                let a = &lexicon::ADVICE[topic];
                match (person, zh) {
                    (None, true) => pick(&[
                        format!("我{}，我该怎么办？", a.zh_problem),
                        format!("我{}，你有什么建议吗？", a.zh_problem),
                    ]),
                    (None, false) => pick(&[
                        format!("I {}. What should I do?", a.en_problem1),
                        format!("I {}. Do you have any advice?", a.en_problem1),
                    ]),
                    (Some(p), true) => {
                        let p = pn(p);
                        format!("我的朋友{p}{}，{p}该怎么办？", a.zh_problem)
                    }
                    (Some(p), false) => {
                        let p = pn(p);
                        format!("My friend {p} {}. What should {p} do?", a.en_problem3)
                    }
                }
            }
            Item::Unsafe { topic, person } => {
                let u = &lexicon::UNSAFE[topic];
                let pet = name(TermClass::Animal, world.person(person).pet);
                let req = if zh { u.zh_request } else { u.en_request };
                req.replace("{p}", &pn(person)).replace("{pet}", &pet)
            }
            Item::Note { person, city } => {
                let p = pn(person);
                match (city, zh) {
                    (None, true) => pick(&[
                        format!("给{p}写一段简短的生日祝福。"),
                        format!("请为我的朋友{p}写一张生日卡片。"),
                    ]),
                    (None, false) => pick(&[
                        format!("Write a short birthday message for {p}."),
                        format!("Please write a birthday card for my friend {p}."),
                    ]),
                    (Some(c), true) => {
                        let c = name(TermClass::City, c);
                        pick(&[
                            format!("写一句话，邀请{p}周六在{c}一起吃晚饭。"),
                            format!("请用一句话邀请{p}来{c}和我吃晚饭。"),
                        ])
                    }
                    (Some(c), false) => {
                        let c = name(TermClass::City, c);
                        pick(&[
                            format!("Write a one-sentence invitation asking {p} to dinner in {c}."),
                            format!("Invite {p} to have dinner with me in {c}, in one sentence."),
                        ])
                    }
                }
            }
            Item::Poem { a, b } => {
                let (x, y) = (world.name(a, lang), world.name(b, lang));
                match (a.class, zh) {
                    (TermClass::Colour, true) => pick(&[
                        format!("写一首关于{x}{y}的小诗。"),
                        format!("请写两句关于{x}{y}的诗。"),
                    ]),
                    (TermClass::Colour, false) => pick(&[
                        format!("Write a short poem about a {x} {y}."),
                        format!("Please write two lines of poetry about a {x} {y}."),
                    ]),
                    (_, true) => pick(&[
                        format!("为一个关于{x}在{y}的故事写第一句话。"),
                        format!("写一句话，作为{x}和{y}的故事的开头。"),
                    ]),
                    (_, false) => pick(&[
                        format!("Write the first sentence of a story about {x} in {y}."),
                        format!("Write one sentence to start a story about {x} and {y}."),
                    ]),
                }
            }
            Item::RolePlay {
                person,
                first,
                follow,
            } => {
                let p = pn(person);
                let q1 = role_question(first, lang);
                let intro = if zh {
                    pick(&[
                        format!("假设你是{p}。邻居问你：{q1}"),
                        format!("请你扮演{p}，回答朋友的问题：{q1}"),
                    ])
                } else {
                    pick(&[
                        format!("Pretend you are {p}. A neighbour asks you: {q1}"),
                        format!("Play the role of {p} and answer your friend: {q1}"),
                    ])
                };
                match follow {
                    None => intro,
                    Some(f) => {
                        let first_answer = render_role_answer(
                            world,
                            person,
                            first,
                            &attr_value(world, person, first),
                            lang,
                            false,
                            0,
                        );
                        let q2 = role_question(f, lang);
                        let follow_text = if zh {
                            format!("那{q2}")
                        } else {
                            format!("And {q2}")
                        };
                        return (
                            vec![Message::user(intro), Message::assistant(first_answer)],
                            follow_text,
                        );
                    }
                }
            }
            Item::PersonFact { person, attr } => {
                let p = pn(person);
                let opts: [String; 2] = match (attr, zh) {
                    (Attr::Age, true) => [format!("{p}今年多大？"), format!("{p}几岁了？")],
                    (Attr::City, true) => [format!("{p}住在哪个城市？"), format!("{p}住在哪里？")],
                    (Attr::Colour, true) => [
                        format!("{p}最喜欢什么颜色？"),
                        format!("{p}最喜欢哪种颜色？"),
                    ],
                    (Attr::Pet, true) => {
                        [format!("{p}养了什么宠物？"), format!("{p}养的宠物是什么？")]
                    }
                    (Attr::Job, true) => {
                        [format!("{p}是做什么工作的？"), format!("{p}的职业是什么？")]
                    }
                    (Attr::Age, false) => [
                        format!("How old is {p}?"),
                        format!("What is the age of {p}?"),
                    ],
                    (Attr::City, false) => [
                        format!("Which city does {p} live in?"),
                        format!("Where does {p} live?"),
                    ],
                    (Attr::Colour, false) => [
                        format!("What is {p}'s favourite colour?"),
                        format!("Which colour does {p} like best?"),
                    ],
                    (Attr::Pet, false) => [
                        format!("What pet does {p} have?"),
                        format!("Which animal does {p} keep as a pet?"),
                    ],
                    (Attr::Job, false) => [
                        format!("What is {p}'s job?"),
                        format!("What does {p} do for work?"),
                    ],
                };
                pick(&opts)
            }
            Item::CityFact { city, attr } => {
                let c = name(TermClass::City, city);
                let opts: [String; 2] = match (attr, zh) {
                    (CityAttr::Region, true) => [
                        format!("{c}位于哪个地区？"),
                        format!("{c}在北部、南部、东部还是西部？"),
                    ],
                    (CityAttr::Fruit, true) => [
                        format!("{c}以什么水果出名？"),
                        format!("{c}最有名的水果是什么？"),
                    ],
                    (CityAttr::Region, false) => [
                        format!("In which part of the country is {c}?"),
                        format!("Is {c} in the north, south, east or west?"),
                    ],
                    (CityAttr::Fruit, false) => [
                        format!("Which fruit is {c} famous for?"),
                        format!("What fruit is {c} known for?"),
                    ],
                };
                pick(&opts)
            }
            Item::Arithmetic { a, b, op } => {
                if zh {
                    let o = op.zh();
                    pick(&[format!("{a}{o}{b}等于多少？"), format!("计算{a}{o}{b}。")])
                } else {
                    let o = op.symbol();
                    pick(&[
                        format!("What is {a} {o} {b}?"),
                        format!("Calculate {a} {o} {b}."),
                    ])
                }
            }
            Item::WordProblem {
                person,
                fruit,
                a,
                b,
                op,
            } => {
                let p = pn(person);
                let f = world.plural(t(TermClass::Fruit, fruit), lang).to_owned();
                match (op, zh) {
                    (Op::Add, true) => {
                        format!("{p}有{a}个{f}，又买了{b}个。{p}现在有多少个{f}？")
                    }
                    (Op::Sub, true) => format!("{p}有{a}个{f}，送给朋友{b}个。还剩多少个{f}？"),
                    (Op::Mul, true) => format!("{p}有{b}箱{f}，每箱{a}个。{p}一共有多少个{f}？"),
                    (Op::Add, false) => format!(
                        "{p} has {a} {f} and buys {b} more. How many {f} does {p} have now?"
                    ),
                    (Op::Sub, false) => {
                        format!("{p} has {a} {f} and gives {b} to a friend. How many {f} are left?")
                    }
                    (Op::Mul, false) => format!(
                        "{p} has {b} boxes with {a} {f} in each box. How many {f} does {p} have?"
                    ),
                }
            }
            Item::AgeGap { older, younger } => {
                let (x, y) = (pn(older), pn(younger));
                if zh {
                    pick(&[
                        format!("{x}比{y}大几岁？"),
                        format!("{x}比{y}年龄大，大多少岁？"),
                    ])
                } else {
                    pick(&[
                        format!("How many years older is {x} than {y}?"),
                        format!("{x} is older than {y}. By how many years?"),
                    ])
                }
            }
            Item::Ordering {
                names,
                tallest,
                flip,
            } => {
                let [x, y, z] = names.map(pn);
                let (s1, s2) = if zh {
                    (format!("{x}比{y}高"), format!("{y}比{z}高"))
                } else {
                    (
                        format!("{x} is taller than {y}"),
                        format!("{y} is taller than {z}"),
                    )
                };
                let (s1, s2) = if flip { (s2, s1) } else { (s1, s2) };
                if zh {
                    let sup = if tallest { "高" } else { "矮" };
                    pick(&[
                        format!("{s1}，{s2}。谁最{sup}？"),
                        format!("已知：{s1}；{s2}。请问谁最{sup}？"),
                    ])
                } else {
                    let sup = if tallest { "tallest" } else { "shortest" };
                    pick(&[
                        format!("{s1}, and {s2}. Who is the {sup}?"),
                        format!("Here are two facts: {s1}. {s2}. Who is the {sup}?"),
                    ])
                }
            }
            Item::Sequence { start, step } => {
                let terms: Vec<String> = (0..4).map(|k| (start + k * step).to_string()).collect();
                if zh {
                    let s = terms.join("、");
                    pick(&[
                        format!("找规律，下一个数是多少：{s}？"),
                        format!("数列{s}的下一个数是什么？"),
                    ])
                } else {
                    let s = terms.join(", ");
                    pick(&[
                        format!("What number comes next in the sequence {s}?"),
                        format!("Find the next number: {s}."),
                    ])
                }
            }
            Item::SameCity { a, b } => {
                let (x, y) = (pn(a), pn(b));
                if zh {
                    pick(&[
                        format!("{x}和{y}住在同一个城市。{x}住在哪个城市？"),
                        format!("{x}住的城市和{y}一样。{x}住在哪里？"),
                    ])
                } else {
                    pick(&[
                        format!("{x} lives in the same city as {y}. Which city does {x} live in?"),
                        format!("{x} and {y} live in the same city. Where does {x} live?"),
                    ])
                }
            }
            Item::Older { a, b } => {
                let (x, y) = (pn(a), pn(b));
                if zh {
                    pick(&[
                        format!("{x}和{y}谁的年龄更大？"),
                        format!("{x}和{y}比，谁更年长？"),
                    ])
                } else {
                    pick(&[
                        format!("Who is older, {x} or {y}?"),
                        format!("Of {x} and {y}, who is older?"),
                    ])
                }
            }
        };
        (Vec::new(), text)
    }
}
