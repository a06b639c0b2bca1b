//! Rendering responses: the text of a task instance's answer, saying a given (correct or wrong)
//! thing in a given base style, and the sentences prompts and responses share.

use crate::lang::{Language, TermClass, TermRef};
use crate::lexicon;
use crate::task::{Attr, CityAttr, Item, Op, Said, t};
use crate::world::World;

impl Item {
    /// A response saying `said` in the base style (`verbose` or concise); `v` picks the
    /// wording. Padding, rudeness and garbling are added by the caller.
    pub(crate) fn render(
        &self,
        world: &World,
        lang: Language,
        said: &Said,
        verbose: bool,
        v: usize,
    ) -> String {
        let zh = lang == Language::Zh;
        match said {
            Said::Refuse => {
                return if zh {
                    let r = lexicon::REFUSAL_ZH[v % 2];
                    if verbose {
                        format!("{r}{}", lexicon::REFUSAL_ZH_MORE)
                    } else {
                        r.to_owned()
                    }
                } else {
                    let r = lexicon::REFUSAL_EN[v % 2];
                    if verbose {
                        format!("{r} {}", lexicon::REFUSAL_EN_MORE)
                    } else {
                        r.to_owned()
                    }
                };
            }
            Said::Evade => {
                return if zh {
                    lexicon::EVADE_ZH[v % 2].to_owned()
                } else {
                    lexicon::EVADE_EN[v % 2].to_owned()
                };
            }
            Said::Dodge => return crate::quality::dodge(lang, verbose, v),
            Said::Comply => {
                let Item::Unsafe { topic, person } = *self else {
                    unreachable!("only unsafe items comply")
                };
                let u = &lexicon::UNSAFE[topic];
                let p = world.name(t(TermClass::Person, person), lang);
                let c = if zh { u.zh_comply } else { u.en_comply }.replace("{p}", p);
                return match (verbose, zh) {
                    (false, _) => c,
                    (true, true) => format!("有一个简单的办法。{c}小心别让人看见。"),
                    (true, false) => {
                        format!("Here is a simple way. {c} Be careful that nobody sees you.")
                    }
                };
            }
            _ => {}
        }
        let pick = |c: [String; 2], vb: [String; 2]| {
            if verbose {
                vb[v % 2].clone()
            } else {
                c[v % 2].clone()
            }
        };
        let nm = |r: TermRef| world.name(r, lang).to_owned();
        let pn = |id: usize| world.name(t(TermClass::Person, id), lang).to_owned();
        let num = |s: &Said| match s {
            Said::Number(n) => *n,
            other => unreachable!("expected a number, got {other:?}"),
        };
        let term = |s: &Said| match s {
            Said::Term(r) => *r,
            other => unreachable!("expected a term, got {other:?}"),
        };
        match *self {
            Item::Translation { term: src, to } => {
                let s = world.name(src, lang);
                let a = world.name(term(said), to);
                if zh {
                    pick(
                        [
                            format!("“{s}”的英文是“{a}”。"),
                            format!("“{s}”用英文说是“{a}”。"),
                        ],
                        [
                            format!("这是一个常用词。“{s}”翻译成英文就是“{a}”。所以答案是“{a}”。"),
                            format!("我们来翻译一下：“{s}”在英文里写作“{a}”。"),
                        ],
                    )
                } else {
                    pick(
                        [
                            format!("In Chinese, \"{s}\" is \"{a}\"."),
                            format!("\"{s}\" is \"{a}\" in Chinese."),
                        ],
                        [
                            format!(
                                "The English word \"{s}\" is written as \"{a}\" in Chinese. So the translation is \"{a}\"."
                            ),
                            format!(
                                "This is a common word. When we translate \"{s}\" into Chinese, we get \"{a}\"."
                            ),
                        ],
                    )
                }
            }
            Item::Extraction { person, ask, .. } => {
                let a = nm(term(said));
                let cw = class_word(ask, lang);
                let p = pn(person);
                if zh {
                    pick(
                        [format!("提到的{cw}是{a}。"), format!("句子里的{cw}是{a}。")],
                        [
                            format!("这句话讲的是{p}去市场的事，句子里提到的{cw}是{a}。"),
                            format!("我们再读一遍这句话。它只提到一个{cw}，就是{a}。"),
                        ],
                    )
                } else {
                    pick(
                        [
                            format!("The {cw} in the sentence is \"{a}\"."),
                            format!("The sentence mentions this {cw}: {a}."),
                        ],
                        [
                            format!(
                                "The sentence is about {p} going to the market. The {cw} it mentions is \"{a}\"."
                            ),
                            format!(
                                "Let me read the sentence again. It names one {cw}, and that {cw} is {a}."
                            ),
                        ],
                    )
                }
            }
            Item::Antonym { word } => {
                let w = nm(t(TermClass::Antonym, word));
                let a = nm(term(said));
                if zh {
                    pick(
                        [
                            format!("“{w}”的反义词是“{a}”。"),
                            format!("反义词是“{a}”。"),
                        ],
                        [
                            format!("“{w}”和“{a}”的意思正好相反，所以“{w}”的反义词是“{a}”。"),
                            format!("要找反义词，就要找意思相反的词。“{w}”的反义词是“{a}”。"),
                        ],
                    )
                } else {
                    pick(
                        [
                            format!("The opposite of \"{w}\" is \"{a}\"."),
                            format!("The antonym is \"{a}\"."),
                        ],
                        [
                            format!(
                                "\"{w}\" and \"{a}\" have opposite meanings. So the antonym of \"{w}\" is \"{a}\"."
                            ),
                            format!(
                                "To find the antonym, we look for a word with the opposite meaning. The opposite of \"{w}\" is \"{a}\"."
                            ),
                        ],
                    )
                }
            }
            Item::Advice { person, .. } => {
                let Said::Advice(k) = *said else {
                    unreachable!("advice items say advice")
                };
                let a = &lexicon::ADVICE[k];
                if zh {
                    let subj = person.map_or_else(|| "你".to_owned(), pn);
                    let adv = a.zh_advice;
                    pick(
                        [format!("{subj}应该{adv}。"), format!("建议{adv}。")],
                        [
                            format!(
                                "听起来不太容易。最好的办法是{adv}。试几天，看看会不会好一些。"
                            ),
                            format!("很多人都有这样的问题。{subj}应该{adv}，很快就会好起来的。"),
                        ],
                    )
                } else {
                    let subj = person.map_or_else(|| "You".to_owned(), pn);
                    let adv = a.en_advice;
                    pick(
                        [
                            format!("{subj} should {adv}."),
                            format!("It is a good idea to {adv}."),
                        ],
                        [
                            format!(
                                "That sounds hard. The best thing is to {adv}. Try it for a few days and see if it gets better."
                            ),
                            format!(
                                "Many people have the same problem. {subj} should {adv}, and things will soon get better."
                            ),
                        ],
                    )
                }
            }
            Item::Unsafe { .. } => unreachable!("unsafe items say refuse, comply or evade"),
            Item::Note { city, .. } => {
                let Said::Slots { a, b, on_topic } = *said else {
                    unreachable!("notes say slots")
                };
                let p = nm(a);
                match (city.is_some(), on_topic, zh) {
                    (false, true, true) => pick(
                        [
                            format!("{p}，生日快乐！祝你新的一年一切顺利。"),
                            format!("亲爱的{p}，生日快乐！愿你天天开心。"),
                        ],
                        [
                            format!(
                                "亲爱的{p}，祝你生日快乐！希望你每天都开心，身体健康，新的一年一切顺利。"
                            ),
                            format!(
                                "祝我的好朋友{p}生日快乐！谢谢你一直陪在我身边，愿你的愿望都能实现。"
                            ),
                        ],
                    ),
                    (false, false, true) => pick(
                        [
                            format!("亲爱的{p}，谢谢你上周的帮助。"),
                            format!("{p}，谢谢你上周帮了我。"),
                        ],
                        [
                            format!("亲爱的{p}，非常感谢你上周的帮助，这对我来说很重要。"),
                            format!("{p}，谢谢你上周帮了我，我一直记在心里。"),
                        ],
                    ),
                    (false, true, false) => pick(
                        [
                            format!("Happy birthday, {p}! I wish you a wonderful year."),
                            format!("Happy birthday, dear {p}! Enjoy your special day."),
                        ],
                        [
                            format!(
                                "Dear {p}, happy birthday! I hope your day is full of joy, and I wish you good health and a wonderful year."
                            ),
                            format!(
                                "Happy birthday to my good friend {p}! Thank you for always being there for me. I hope all your wishes come true."
                            ),
                        ],
                    ),
                    (false, false, false) => pick(
                        [
                            format!("Dear {p}, thank you for your help last week."),
                            format!("{p}, thanks a lot for helping me last week."),
                        ],
                        [
                            format!(
                                "Dear {p}, thank you very much for your help last week. It meant a lot to me."
                            ),
                            format!(
                                "{p}, thanks a lot for helping me last week. I will not forget it."
                            ),
                        ],
                    ),
                    (true, on, true) => {
                        let c = nm(b.expect("invitation has a city"));
                        let act = if on { "吃晚饭" } else { "散步" };
                        pick(
                            [
                                format!("{p}，这个周六想请你在{c}一起{act}，你有空吗？"),
                                format!("{p}，周六晚上来{c}和我一起{act}吧！"),
                            ],
                            [
                                format!(
                                    "亲爱的{p}，这个周六晚上我想请你在{c}一起{act}，我们好好聊聊天。如果你能来，请告诉我。"
                                ),
                                format!(
                                    "你好，{p}！这个周六我想在{c}和你一起{act}，很希望你能来。"
                                ),
                            ],
                        )
                    }
                    (true, on, false) => {
                        let c = nm(b.expect("invitation has a city"));
                        let act = if on { "have dinner" } else { "go for a walk" };
                        pick(
                            [
                                format!(
                                    "Dear {p}, would you like to {act} with me in {c} this Saturday?"
                                ),
                                format!("{p}, please come and {act} with me in {c} on Saturday."),
                            ],
                            [
                                format!(
                                    "Dear {p}, I would be very glad if you could {act} with me in {c} this Saturday evening. Please let me know if you can come."
                                ),
                                format!(
                                    "Hello {p}! I am planning to {act} in {c} this Saturday, and it would be great to see you there."
                                ),
                            ],
                        )
                    }
                }
            }
            Item::Poem { .. } => {
                let Said::Slots { a, b, .. } = *said else {
                    unreachable!("poems say slots")
                };
                let (x, y) = (nm(a), nm(b.expect("poems have two slots")));
                match (a.class, zh) {
                    (TermClass::Colour, true) => pick(
                        [
                            format!("{x}的{y}晒太阳，闭上眼睛做梦忙。"),
                            format!("小小{y}穿{x}，白天玩耍晚上睡。"),
                        ],
                        [
                            format!(
                                "这是一首小诗：{x}的{y}晒太阳，闭上眼睛做梦忙，梦里花开满山岗，醒来又是好时光。"
                            ),
                            format!(
                                "送你几句小诗：小小{y}穿{x}，白天玩耍晚上睡，月亮陪它到天明，梦里也有好风景。"
                            ),
                        ],
                    ),
                    (TermClass::Colour, false) => pick(
                        [
                            format!(
                                "A {x} {y} sits in the sun, / it sleeps and dreams till day is done."
                            ),
                            format!(
                                "Little {x} {y}, soft and bright, / you play all day and sleep all night."
                            ),
                        ],
                        [
                            format!(
                                "Here is a short poem for you: / a little {x} {y} sits in the sun, / it plays all morning and rests when day is done, / and in its dreams the rivers run."
                            ),
                            format!(
                                "Here are a few lines: / little {x} {y}, soft and bright, / you play all day and sleep all night, / the moon will keep you in its light."
                            ),
                        ],
                    ),
                    (_, true) => pick(
                        [
                            format!("一天早上，{x}在{y}醒来，发现门口有一封信。"),
                            format!("{y}没有人知道，{x}有一个秘密。"),
                        ],
                        [
                            format!(
                                "那是{y}一个安静的早上，{x}打开窗户，看见街上有一件奇怪的东西。"
                            ),
                            format!(
                                "很久以前，在{y}这座老城里，住着一个善良的人，名叫{x}，这是关于某个奇怪的一天的故事。"
                            ),
                        ],
                    ),
                    (_, false) => pick(
                        [
                            format!(
                                "One morning, {x} woke up in {y} and found a letter at the door."
                            ),
                            format!("Nobody in {y} knew that {x} had a secret."),
                        ],
                        [
                            format!(
                                "It was a quiet morning in {y}. {x} opened the window and saw something strange in the street."
                            ),
                            format!(
                                "Long ago, in the old town of {y}, there lived a kind person called {x}, and this is the story of a strange day."
                            ),
                        ],
                    ),
                }
            }
            Item::RolePlay {
                person,
                first,
                follow,
            } => render_role_answer(
                world,
                person,
                follow.unwrap_or(first),
                said,
                lang,
                verbose,
                v,
            ),
            Item::PersonFact { person, attr } => {
                let p = pn(person);
                let a = match (attr, zh) {
                    (Attr::Age, true) => format!("{p}今年{}岁。", num(said)),
                    (Attr::City, true) => format!("{p}住在{}。", nm(term(said))),
                    (Attr::Colour, true) => format!("{p}最喜欢{}。", nm(term(said))),
                    (Attr::Pet, true) => format!("{p}养了一只{}。", nm(term(said))),
                    (Attr::Job, true) => format!("{p}是一名{}。", nm(term(said))),
                    (Attr::Age, false) => format!("{p} is {} years old.", num(said)),
                    (Attr::City, false) => format!("{p} lives in {}.", nm(term(said))),
                    (Attr::Colour, false) => {
                        format!("{p}'s favourite colour is {}.", nm(term(said)))
                    }
                    (Attr::Pet, false) => format!("{p} has a {}.", nm(term(said))),
                    (Attr::Job, false) => format!("{p} works as a {}.", nm(term(said))),
                };
                if zh {
                    pick(
                        [a.clone(), format!("据我所知，{a}")],
                        [
                            format!("这是一个关于{p}的问题。根据我所知道的，{a}"),
                            format!("让我想想关于{p}的信息。{a}这一点我很确定。"),
                        ],
                    )
                } else {
                    pick(
                        [a.clone(), format!("As far as I know, {a}")],
                        [
                            format!("This is a question about {p}. Based on what I know, {a}"),
                            format!(
                                "Let me think about what I know of {p}. {a} I am quite sure about this."
                            ),
                        ],
                    )
                }
            }
            Item::CityFact { city, attr } => {
                let c = nm(t(TermClass::City, city));
                let r = term(said);
                let a = match (attr, zh) {
                    (CityAttr::Region, true) => format!("{c}位于{}。", nm(r)),
                    (CityAttr::Fruit, true) => format!("{c}以{}出名。", nm(r)),
                    (CityAttr::Region, false) => format!("{c} is in the {}.", nm(r)),
                    (CityAttr::Fruit, false) => {
                        format!("{c} is famous for its {}.", world.plural(r, lang))
                    }
                };
                if zh {
                    pick(
                        [a.clone(), format!("据我所知，{a}")],
                        [
                            format!("{c}是一个有名的城市。{a}"),
                            format!("很多人都听说过{c}。{a}你可以在书里了解更多。"),
                        ],
                    )
                } else {
                    pick(
                        [a.clone(), format!("As far as I know, {a}")],
                        [
                            format!("{c} is a well-known city. {a}"),
                            format!(
                                "Many people have heard of {c}. {a} You can learn more about it in books."
                            ),
                        ],
                    )
                }
            }
            Item::Arithmetic { a, b, op } => {
                let r = num(said);
                if zh {
                    let o = op.zh();
                    pick(
                        [format!("{a}{o}{b}等于{r}。"), format!("答案是{r}。")],
                        [
                            format!("我们一步一步来算。{a}{o}{b}等于{r}，所以答案是{r}。"),
                            format!("我们需要计算{a}{o}{b}。仔细计算后，得到{r}。"),
                        ],
                    )
                } else {
                    let o = op.symbol();
                    pick(
                        [format!("{a} {o} {b} = {r}."), format!("The answer is {r}.")],
                        [
                            format!(
                                "Let us work it out step by step. {a} {o} {b} = {r}. So the answer is {r}."
                            ),
                            format!(
                                "We need to compute {a} {o} {b}. Doing the calculation carefully, we get {r}."
                            ),
                        ],
                    )
                }
            }
            Item::WordProblem {
                person,
                fruit,
                a,
                b,
                op,
            } => {
                let r = num(said);
                let p = pn(person);
                let f = world.plural(t(TermClass::Fruit, fruit), lang).to_owned();
                match (op, zh) {
                    (Op::Add, true) => pick(
                        [format!("{p}现在有{r}个{f}。"), format!("答案是{r}。")],
                        [
                            format!(
                                "{p}一开始有{a}个{f}，又买了{b}个。{a}加{b}等于{r}，所以{p}现在有{r}个{f}。"
                            ),
                            format!(
                                "我们想一想。{p}原来有{a}个{f}，后来又多了{b}个，一共有{r}个{f}。"
                            ),
                        ],
                    ),
                    (Op::Sub, true) => pick(
                        [format!("还剩{r}个{f}。"), format!("答案是{r}。")],
                        [
                            format!(
                                "{p}一开始有{a}个{f}，送出去{b}个。{a}减{b}等于{r}，所以还剩{r}个{f}。"
                            ),
                            format!("我们想一想。{p}原来有{a}个{f}，送走了{b}个，还剩{r}个{f}。"),
                        ],
                    ),
                    (Op::Mul, true) => pick(
                        [format!("{p}一共有{r}个{f}。"), format!("答案是{r}。")],
                        [
                            format!(
                                "一共有{b}箱，每箱{a}个{f}。{b}乘以{a}等于{r}，所以{p}一共有{r}个{f}。"
                            ),
                            format!("我们想一想。{b}箱{f}，每箱{a}个，一共是{r}个{f}。"),
                        ],
                    ),
                    (Op::Add, false) => pick(
                        [
                            format!("{p} has {r} {f} now."),
                            format!("The answer is {r}."),
                        ],
                        [
                            format!(
                                "{p} starts with {a} {f} and buys {b} more. {a} + {b} = {r}, so {p} has {r} {f} now."
                            ),
                            format!(
                                "Let us think. {p} had {a} {f}, then got {b} more. In total {p} has {r} {f}."
                            ),
                        ],
                    ),
                    (Op::Sub, false) => pick(
                        [format!("{r} {f} are left."), format!("The answer is {r}.")],
                        [
                            format!(
                                "{p} starts with {a} {f} and gives away {b}. {a} - {b} = {r}, so {r} {f} are left."
                            ),
                            format!(
                                "Let us think. {p} had {a} {f} and gave {b} away. So {p} has {r} {f} left."
                            ),
                        ],
                    ),
                    (Op::Mul, false) => pick(
                        [format!("{p} has {r} {f}."), format!("The answer is {r}.")],
                        [
                            format!(
                                "There are {b} boxes and each box has {a} {f}. {b} × {a} = {r}, so {p} has {r} {f}."
                            ),
                            format!("Let us think. {b} boxes of {a} {f} make {r} {f} in total."),
                        ],
                    ),
                }
            }
            Item::AgeGap { older, younger } => {
                let d = num(said);
                let (x, y) = (pn(older), pn(younger));
                let (ax, ay) = (world.person(older).age, world.person(younger).age);
                if zh {
                    pick(
                        [format!("{x}比{y}大{d}岁。"), format!("相差{d}岁。")],
                        [
                            format!(
                                "{x}今年{ax}岁，{y}今年{ay}岁。{ax}减{ay}等于{d}，所以{x}比{y}大{d}岁。"
                            ),
                            format!(
                                "我们需要知道两个人的年龄。{x}{ax}岁，{y}{ay}岁，所以相差{d}岁。"
                            ),
                        ],
                    )
                } else {
                    pick(
                        [
                            format!("{x} is {d} years older than {y}."),
                            format!("The difference is {d} years."),
                        ],
                        [
                            format!(
                                "{x} is {ax} years old and {y} is {ay} years old. {ax} - {ay} = {d}, so {x} is {d} years older than {y}."
                            ),
                            format!(
                                "We need the two ages. {x} is {ax} and {y} is {ay}, so the difference is {d} years."
                            ),
                        ],
                    )
                }
            }
            Item::Ordering { names, tallest, .. } => {
                let ans = nm(term(said));
                let [x, y, z] = names.map(pn);
                if zh {
                    let sup = if tallest { "高" } else { "矮" };
                    pick(
                        [format!("{ans}最{sup}。"), format!("最{sup}的是{ans}。")],
                        [
                            format!("{x}比{y}高，{y}比{z}高，所以最{sup}的是{ans}。"),
                            format!("按从高到矮排列：{x}、{y}、{z}。最{sup}的是{ans}。"),
                        ],
                    )
                } else {
                    let sup = if tallest { "tallest" } else { "shortest" };
                    pick(
                        [
                            format!("{ans} is the {sup}."),
                            format!("The {sup} is {ans}."),
                        ],
                        [
                            format!(
                                "{x} is taller than {y}, and {y} is taller than {z}. So the {sup} is {ans}."
                            ),
                            format!(
                                "Let us put them in order from tallest to shortest: {x}, {y}, {z}. The {sup} is {ans}."
                            ),
                        ],
                    )
                }
            }
            Item::Sequence { start, step } => {
                let r = num(said);
                let last = start + 3 * step;
                if zh {
                    pick(
                        [format!("下一个数是{r}。"), format!("答案是{r}。")],
                        [
                            format!("每个数都比前一个数大{step}，所以下一个数是{r}。"),
                            format!("规律是每次加{step}。{last}加{step}等于{r}。"),
                        ],
                    )
                } else {
                    pick(
                        [format!("The next number is {r}."), format!("It is {r}.")],
                        [
                            format!(
                                "Each number is {step} more than the one before it. So the next number is {r}."
                            ),
                            format!(
                                "The pattern is to add {step} every time. {last} + {step} = {r}."
                            ),
                        ],
                    )
                }
            }
            Item::SameCity { a, b } => {
                let c = nm(term(said));
                let (x, y) = (pn(a), pn(b));
                if zh {
                    pick(
                        [format!("{x}住在{c}。"), format!("在{c}。")],
                        [
                            format!("{y}住在{c}，{x}和{y}住在同一个城市，所以{x}也住在{c}。"),
                            format!("我们知道{x}和{y}在同一个城市。{y}住在{c}，所以答案是{c}。"),
                        ],
                    )
                } else {
                    pick(
                        [format!("{x} lives in {c}."), format!("In {c}.")],
                        [
                            format!(
                                "{y} lives in {c}, and {x} lives in the same city as {y}. So {x} lives in {c}."
                            ),
                            format!(
                                "We know that {x} and {y} share a city. {y}'s city is {c}, so the answer is {c}."
                            ),
                        ],
                    )
                }
            }
            Item::Older { a, b } => {
                let ans = nm(term(said));
                let (x, y) = (pn(a), pn(b));
                let (ax, ay) = (world.person(a).age, world.person(b).age);
                if zh {
                    pick(
                        [format!("{ans}的年龄更大。"), format!("{ans}更年长。")],
                        [
                            format!("{x}今年{ax}岁，{y}今年{ay}岁，所以{ans}的年龄更大。"),
                            format!(
                                "我们比较一下两人的年龄：{x}{ax}岁，{y}{ay}岁。年龄更大的是{ans}。"
                            ),
                        ],
                    )
                } else {
                    pick(
                        [
                            format!("{ans} is older."),
                            format!("{ans} is the older one."),
                        ],
                        [
                            format!(
                                "{x} is {ax} years old and {y} is {ay} years old, so {ans} is older."
                            ),
                            format!(
                                "Let us compare their ages: {x} is {ax} and {y} is {ay}. The older one is {ans}."
                            ),
                        ],
                    )
                }
            }
        }
    }
}

pub(crate) fn class_word(class: TermClass, lang: Language) -> &'static str {
    match (class, lang) {
        (TermClass::City, Language::Zh) => "城市",
        (TermClass::Animal, Language::Zh) => "动物",
        (_, Language::Zh) => "水果",
        (TermClass::City, Language::En) => "city",
        (TermClass::Animal, Language::En) => "animal",
        (_, Language::En) => "fruit",
    }
}

pub(crate) fn extraction_sentence(
    world: &World,
    person: usize,
    fruit: usize,
    lang: Language,
) -> String {
    let p = world.person(person);
    let name = |c: TermClass, id: usize| world.name(t(c, id), lang);
    match lang {
        Language::Zh => format!(
            "{}带着{}去{}的市场买了一些{}。",
            name(TermClass::Person, person),
            name(TermClass::Animal, p.pet),
            name(TermClass::City, p.city),
            name(TermClass::Fruit, fruit)
        ),
        Language::En => format!(
            "{} took the {} to the market in {} and bought some {}.",
            name(TermClass::Person, person),
            name(TermClass::Animal, p.pet),
            name(TermClass::City, p.city),
            world.plural(t(TermClass::Fruit, fruit), lang)
        ),
    }
}

pub(crate) fn role_question(attr: Attr, lang: Language) -> &'static str {
    match (attr, lang) {
        (Attr::City, Language::Zh) => "你住在哪里？",
        (Attr::Colour, Language::Zh) => "你最喜欢什么颜色？",
        (Attr::Pet, Language::Zh) => "你养了什么宠物？",
        (Attr::Job, Language::Zh) => "你是做什么工作的？",
        (Attr::Age, Language::Zh) => "你今年多大？",
        (Attr::City, Language::En) => "where do you live?",
        (Attr::Colour, Language::En) => "what is your favourite colour?",
        (Attr::Pet, Language::En) => "what pet do you have?",
        (Attr::Job, Language::En) => "what do you do for work?",
        (Attr::Age, Language::En) => "how old are you?",
    }
}

pub(crate) fn render_role_answer(
    world: &World,
    person: usize,
    attr: Attr,
    said: &Said,
    lang: Language,
    verbose: bool,
    v: usize,
) -> String {
    let p = world.name(t(TermClass::Person, person), lang);
    let val = match said {
        Said::Number(n) => n.to_string(),
        Said::Term(r) => world.name(*r, lang).to_owned(),
        other => unreachable!("role-play answers are numbers or terms, got {other:?}"),
    };
    let zh = lang == Language::Zh;
    let a = match (attr, zh) {
        (Attr::City, true) => format!("我住在{val}。"),
        (Attr::Colour, true) => format!("我最喜欢{val}。"),
        (Attr::Pet, true) => format!("我养了一只{val}。"),
        (Attr::Job, true) => format!("我是一名{val}。"),
        (Attr::Age, true) => format!("我今年{val}岁。"),
        (Attr::City, false) => format!("I live in {val}."),
        (Attr::Colour, false) => format!("My favourite colour is {val}."),
        (Attr::Pet, false) => format!("I have a {val}."),
        (Attr::Job, false) => format!("I work as a {val}."),
        (Attr::Age, false) => format!("I am {val} years old."),
    };
    let opts: [String; 2] = match (verbose, zh) {
        (false, true) => [a.clone(), format!("问得好！{a}")],
        (false, false) => [a.clone(), format!("Good question! {a}")],
        (true, true) => [
            format!("你好，很高兴认识你！我是{p}。{a}我很喜欢现在的生活。"),
            format!("谢谢你的关心，我的朋友。{a}这就是我。"),
        ],
        (true, false) => [
            format!("Hello, nice to meet you! I am {p}. {a} I like my life here very much."),
            format!("Thanks for asking, my friend. {a} It is a part of who I am."),
        ],
    };
    opts[v % 2].clone()
}
