//! The rule-based prompt-quality classifier on hand-written Chinese and English prompts.
//!
//! The prompts below were written for this test and are not seen by the classifier's rules,
//! which use general keyword bags and character statistics.

use rlhf_prefdata::{PromptClassifier, PromptQuality, RuleBasedClassifier};

const CLEAR: &[&str] = &[
    "How do I reverse a linked list in Python?",
    "Explain the difference between TCP and UDP.",
    "Write a short poem about autumn leaves.",
    "What are the health benefits of green tea?",
    "Translate 'good morning' into French.",
    "Summarize the causes of World War I in three bullet points.",
    "What is 17 * 23?",
    "Give me a recipe for vegetarian lasagna.",
    "如何用Python读取CSV文件？",
    "请解释一下量子纠缠是什么。",
    "帮我写一封请假邮件，理由是感冒发烧。",
    "光合作用的主要产物有哪些？",
    "比较一下TCP和UDP的区别。",
    "北京有哪些值得去的博物馆？",
    "请把这句话翻译成英文：今天天气很好。",
    "1+1等于几？",
];

const UNCLEAR_INTENT: &[&str] = &[
    "hi",
    "hello there",
    "Can you help me?",
    "What do you think about it?",
    "banana",
    "ok",
    "I have a question",
    "Do that thing again",
    "你好",
    "在吗",
    "帮我一下",
    "这个怎么样？",
    "嗯嗯",
    "我想问个问题",
    "苹果",
    "那个呢",
];

const UNCLEAR_SEMANTICS: &[&str] = &[
    "asdfghjkl",
    "aaaaaaaaaaaa",
    "?????!!!!",
    "qwerty uiop zxcvbnm",
    "fjdksl jfkdsl",
    "1234567890",
    "x7$k2!p9#q",
    "lorem lorem lorem lorem lorem lorem",
    "啊啊啊啊啊啊啊啊",
    "？？？？？？",
    "哈哈哈哈哈哈哈哈哈哈",
    "的了吗呢吧是不",
    "。，、；：！",
    "dfjkl的qwer了",
    "嗯嗯嗯嗯嗯嗯嗯嗯嗯",
    "a1的b2了c3吗",
];

const UNANSWERABLE: &[&str] = &[
    "What will the winning Powerball numbers be next Saturday?",
    "Tell me the lottery numbers for tomorrow's draw.",
    "What exactly am I thinking right now?",
    "What did I eat for breakfast this morning?",
    "What will Apple's stock price be at market close next Friday?",
    "Who will win the World Cup in 2042?",
    "What is my bank account password?",
    "Where did I leave my car keys?",
    "下期双色球的中奖号码是多少？",
    "告诉我明天大乐透的开奖号码",
    "我现在心里在想什么？",
    "我昨天晚上吃了什么？",
    "下周一茅台的股价会是多少？",
    "2050年世界杯冠军是哪个国家？",
    "我的银行卡密码是多少？",
    "猜猜我口袋里有几块钱",
];

#[test]
fn rule_based_classifier_is_accurate_on_hand_written_prompts() {
    let c = RuleBasedClassifier::default();
    let sets = [
        (PromptQuality::ClearAndAnswerable, CLEAR),
        (PromptQuality::UnclearIntent, UNCLEAR_INTENT),
        (PromptQuality::UnclearSemantics, UNCLEAR_SEMANTICS),
        (PromptQuality::Unanswerable, UNANSWERABLE),
    ];
    let mut total = 0;
    let mut right = 0;
    let mut wrong = Vec::new();
    for (label, prompts) in sets {
        assert!(prompts.len() >= 8);
        let mut label_right = 0;
        for p in prompts {
            let got = c.classify(p);
            if got == label {
                label_right += 1;
            } else {
                wrong.push(format!("{p:?}: expected {label}, got {got}"));
            }
        }
        let acc = label_right as f64 / prompts.len() as f64;
        assert!(
            acc >= 0.85,
            "{label}: accuracy {acc:.2}\n{}",
            wrong.join("\n")
        );
        total += prompts.len();
        right += label_right;
    }
    let acc = right as f64 / total as f64;
    eprintln!("rule-based prompt-quality accuracy: {right}/{total}");
    for w in &wrong {
        eprintln!("  miss: {w}");
    }
    assert!(
        acc >= 0.9,
        "overall accuracy {acc:.3}\n{}",
        wrong.join("\n")
    );
}
