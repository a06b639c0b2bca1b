//! Keyword bags (Chinese and English) of the rule-based prompt classifier.
//!
//! All matching is on NFKC-normalised, lower-cased text. The bags are general vocabulary
//! (lottery names, future markers, function words), not test sentences.

pub(crate) const PARTICLES: &str = "的了吗呢吧啊呀嘛么是不在有和与也就都而及着过得地之乎哦嗯";

#[rustfmt::skip]
pub(crate) const ZH_LOTTERY: &[&str] = &[
    "彩票", "双色球", "大乐透", "中奖号码", "开奖号码", "开奖结果", "福彩", "体彩", "六合彩", "七乐彩", "排列三", "排列五", "头奖号码",
];
#[rustfmt::skip]
pub(crate) const EN_LOTTERY: &[&str] = &[
    "lottery", "powerball", "mega millions", "lotto", "winning numbers", "jackpot numbers",
];
#[rustfmt::skip]
pub(crate) const ZH_FUTURE: &[&str] = &[
    "下期", "下一期", "明天", "明晚", "今晚", "下周", "下个月", "明年", "未来", "预测", "将会", "会是", "本期", "下次", "下一次",
    "后天", "届时",
];
#[rustfmt::skip]
pub(crate) const EN_FUTURE: &[&str] = &[
    "next ", "tomorrow", "upcoming", " will ", "will be", "future", "tonight", "predict", "coming ",
    "won't", "going to",
];
#[rustfmt::skip]
pub(crate) const ZH_OUTCOME: &[&str] = &[
    "股价", "收盘价", "开盘价", "汇率", "币价", "比特币价格", "金价", "油价", "冠军", "比分", "谁会赢", "谁能赢", "当选", "中奖", "涨停",
    "房价",
];
#[rustfmt::skip]
pub(crate) const EN_OUTCOME: &[&str] = &[
    "stock price", "share price", "closing price", "opening price", "exchange rate",
    "price of bitcoin", "bitcoin price", "price of gold", "win the world cup", "win the election",
    "win the super bowl", "win the championship", "final score", "who will win", "champion",
];
/// Conjunctions of substrings about things only the user knows.
pub(crate) const ZH_PRIVATE: &[&[&str]] = &[
    &["我", "在想什么"],
    &["我", "心里想"],
    &["我", "想的是什么"],
    &["我", "吃了什么"],
    &["我", "吃的什么"],
    &["我", "梦到了什么"],
    &["我", "梦见了什么"],
    &["我", "做了什么梦"],
    &["我的", "密码是多少"],
    &["我的", "密码是什么"],
    &["我", "口袋里"],
    &["我", "放在哪"],
    &["我", "丢在哪"],
    &["我", "钥匙在哪"],
];
pub(crate) const EN_PRIVATE: &[&[&str]] = &[
    &["am i thinking"],
    &["i am thinking of right now"],
    &["read my mind"],
    &["did i eat"],
    &["did i have for"],
    &["did i dream"],
    &["what is my", "password"],
    &["what's my", "password"],
    &["tell me my", "password"],
    &["guess my password"],
    &["what is my", "pin"],
    &["in my pocket"],
    &["where did i leave"],
    &["where did i put"],
];

#[rustfmt::skip]
pub(crate) const ZH_FILLER_WORDS: &[&str] = &[
    "谢谢", "您好", "你好", "哈喽", "一下", "什么", "怎么", "东西", "问题", "事情", "可以", "能不能", "继续", "知道", "觉得", "意思",
    "这样", "那样", "这个", "那个", "一个", "帮忙", "测试", "好的",
];
pub(crate) const ZH_FILLER_CHARS: &str = "我你您他她它们的了吗呢吧啊呀嘛么哦嗯哈嗨喂是在有这那个些一下点帮给请能想要样看说做写好再还就也都事问";
#[rustfmt::skip]
pub(crate) const ZH_QUESTION: &[&str] = &[
    "?", "什么", "怎么", "为什么", "如何", "多少", "哪", "谁", "几", "是否", "吗", "呢", "是不是",
];
#[rustfmt::skip]
pub(crate) const ZH_REQUEST: &[&str] = &[
    "请", "写", "翻译", "解释", "介绍", "总结", "列出", "列举", "计算", "分析", "比较", "生成", "推荐", "设计", "描述", "给出",
    "证明", "求", "改写", "润色", "概括", "说明", "编写", "讲",
];
#[rustfmt::skip]
pub(crate) const EN_STOPWORDS: &[&str] = &[
    "i", "me", "my", "mine", "you", "your", "yours", "it", "its", "this", "that", "these", "those",
    "the", "a", "an", "to", "do", "does", "did", "done", "can", "could", "would", "will", "shall",
    "should", "please", "help", "want", "need", "something", "anything", "thing", "things", "stuff",
    "what", "whats", "about", "how", "is", "are", "was", "were", "be", "been", "am", "with", "for",
    "of", "on", "in", "at", "some", "one", "hi", "hello", "hey", "ok", "okay", "so", "and", "or",
    "just", "more", "again", "tell", "think", "mean", "here", "there", "they", "them", "he", "she",
    "him", "her", "we", "us", "let", "lets", "s", "say", "know", "yes", "no", "thanks", "thank",
    "well", "um", "uh", "hmm", "really", "go", "get", "make", "write", "give", "show", "have",
    "has", "had", "question", "questions", "problem", "ask", "like", "same", "other", "another",
    "yeah", "sure", "cool", "nice", "good", "morning", "evening", "night", "bye", "test", "testing",
    "now", "then", "too", "also", "very", "if", "any", "all", "why", "when", "where", "who",
    "which", "whose", "whom",
];
#[rustfmt::skip]
pub(crate) const EN_QUESTION: &[&str] = &[
    "what", "why", "how", "when", "where", "who", "which", "whose", "whom", "can", "could", "would",
    "should", "is", "are", "do", "does", "did", "will",
];
#[rustfmt::skip]
pub(crate) const EN_REQUEST: &[&str] = &[
    "explain", "describe", "write", "list", "summarize", "summarise", "translate", "compare",
    "calculate", "compute", "define", "give", "tell", "show", "generate", "create", "suggest",
    "recommend", "solve", "analyze", "analyse", "find", "name", "draft", "compose", "rewrite",
    "convert", "classify", "plan", "design", "prove", "outline", "review", "fix", "implement",
];

pub(crate) fn contains_any(text: &str, bag: &[&str]) -> bool {
    bag.iter().any(|k| text.contains(k))
}

pub(crate) fn matches_all_of_any(text: &str, patterns: &[&[&str]]) -> bool {
    patterns.iter().any(|p| p.iter().all(|k| text.contains(k)))
}
