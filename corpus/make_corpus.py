#!/usr/bin/env python3
"""Generate the labelled banana / cookie / other corpus (train, val, test).

Deterministic (stdlib only, ``random.Random(seed)``): the same seed gives
byte-identical files.  Run from the repository root::

    python corpus/make_corpus.py                 # writes corpus/banana-cookie/*.jsonl
    python corpus/make_corpus.py --seed 7 --out /tmp/bc

How a post is made:

1. pick its class (banana 25 %, cookie 25 %, other 50 %, exact counts per split);
2. pick a *kind* inside the class (e.g. ``keyword`` / ``implicit`` banana posts,
   ``hard_banana`` / ``hard_cookie`` / ``confuser`` / ``plain`` other posts);
3. pick a *concept* of that kind (banana bread, browser cookies, ...) and one of
   its phrasings (templates).  Every concept has ``seen`` phrasings (train, val
   and test) and ``held`` phrasings (test only);
4. fill the ``{slots}`` from filler lists; proper nouns (people, usernames,
   pets, shops, places, teams, URLs) come from disjoint train/test halves;
5. decorate it like a social-media post: @mention, "RT @user:", slang, emoji,
   hashtags, a link, a check-in, ALL CAPS, typos.

Labels: ``banana`` = the post is about eating, cooking or buying the fruit (banana
dishes count, plantains do not); ``cookie`` = about cookies, the baked treat
(a banana *cookie* is a cookie; brownies, cakes, muffins and biscuits-and-gravy are
not); everything else (idioms, names, pets, brands, games, browser cookies) is
``other``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from random import Random

CLASSES = ("banana", "cookie", "other")
SPLIT_SIZES = {"train": 5000, "val": 1000, "test": 1000}
CLASS_SHARE = {"banana": 0.25, "cookie": 0.25, "other": 0.50}
KIND_SHARE = {
    "banana": {"keyword": 0.78, "implicit": 0.22},
    "cookie": {"keyword": 0.78, "implicit": 0.22},
    "other": {"hard_banana": 0.16, "hard_cookie": 0.16, "confuser": 0.16, "plain": 0.52},
}
HELD_SHARE_IN_TEST = 0.30  # chance a test post uses a test-only phrasing, if its concept has one
MIN_WORDS, MAX_WORDS = 1, 40  # a lone hashtag is a post
DEFAULT_SEED = 20240611
DEFAULT_OUT = Path(__file__).resolve().parent / "banana-cookie"

# --------------------------------------------------------------------------
# Filler lists.  A tuple (train_side, test_side) is split: train and val draw
# from the first list, test from the second.  A plain list is shared.
# --------------------------------------------------------------------------

FILLERS = {
    # proper nouns: split, so test posts name people / places the model never saw
    "name": (
        ["Betty", "Mike", "Jess", "Sam", "Priya", "Carlos", "Emma", "Tom", "Aisha", "Liam",
         "Grace", "Noah", "Mei", "Jake", "Olivia", "Raj", "Hannah", "Diego", "Zoe", "Ben"],
        ["Marcus", "Leila", "Owen", "Sofia", "Hugo", "Nadia", "Ethan", "Chloe", "Kofi",
         "Ruth", "Felix", "Yuki"],
    ),
    "user": (
        ["bakerbetty", "mike_runs", "jess_eats", "sammycooks", "priyainthekitchen",
         "carlos_fc", "emmawrites", "tomtalks", "grace_h", "noahplays", "mei_mei88",
         "jakeonbikes", "oliviabakes", "thefoodnerd", "dailydoseofdan", "city_jogger",
         "aisha_reads", "liamlifts"],
        ["marcus_eats", "leila_loves", "owen_outdoors", "hungryhugo", "nadia_k",
         "chloecooks", "felixfeeds", "kofi_kicks", "ruthbakes", "yuki_yum", "sofia_sips"],
    ),
    "pet": (["Max", "Luna", "Milo", "Bella", "Charlie", "Daisy"],
            ["Rocky", "Nala", "Ziggy", "Pepper", "Otis"]),
    "banana_pet": (["Banana", "Bananas"], ["Banana", "Mr. Banana", "Banana Jr."]),
    "cookie_pet": (["Cookie", "Cookie Bear"], ["Cookie", "Sir Cookie", "Cookie Jr."]),
    "species": (["cat", "dog", "hamster", "rabbit", "puppy"],
                ["cat", "dog", "kitten", "parrot", "guinea pig"]),
    "market": (["Greenleaf Market", "Trader Joe's", "Aldi", "the farmers market",
                "Whole Foods", "Fresh Fields"],
               ["Lidl", "Kroger", "Sprouts", "Harvest Corner Market", "the corner shop"]),
    "bakery": (["Sunrise Bakery", "Crumb & Co", "Sweet Spot Bakery", "Flour Child"],
               ["Golden Crust Bakery", "The Rolling Pin", "Butter Lane Bakehouse"]),
    "diner": (["Joe's Diner", "the Blue Plate", "Mel's", "Waffle House"],
              ["Rosie's Diner", "the Silver Spoon", "Lou's Luncheonette"]),
    "cafe": (["Bean There Cafe", "Morning Ritual", "Starbucks"],
             ["Daily Grind", "Little Owl Coffee", "Costa"]),
    "place": (["Central Park", "the office", "Lincoln High School", "Gate 12",
               "Iron Temple Gym", "Union Station"],
              ["Riverside Park", "Terminal B", "the city library", "Maple Street Gym",
               "Pier 39"]),
    "city": (["Chicago", "Austin", "Leeds", "Toronto", "Manila", "Denver"],
             ["Lisbon", "Portland", "Glasgow", "Auckland", "Nairobi"]),
    "team": (["the Bulls", "Arsenal", "the Yankees", "the Chiefs", "Real Madrid", "the Lakers"],
             ["the Celtics", "Liverpool", "the Dodgers", "the Packers", "Barça"]),
    "banana_user": (["bananaman99", "banana_beats", "topbanana_tv"],
                    ["bananajoe_tv", "bigbananaenergy", "bananarama_fan"]),
    "cookie_user": (["cookie_gamer", "cookiecrunchtv", "smartcookie_dev"],
                    ["thecookiejarfm", "cookiemonstr_plays", "toughcookie_77"]),
    "url_host": (["https://t.co/", "bit.ly/", "https://ow.ly/"],
                 ["https://t.co/", "buff.ly/", "https://tinyurl.com/"]),
    # concept words: shared (the concepts are the same in every split)
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "drink": ["coffee", "tea", "milk", "oat milk", "a latte", "hot chocolate", "cold brew"],
    "fruit": ["strawberry", "blueberry", "mango", "spinach", "peanut butter", "pineapple"],
    "other_fruit": ["avocados", "mangoes", "peaches", "pears", "plums", "nectarines", "kiwis"],
    "mixin": ["walnuts", "chocolate chips", "pecans", "cinnamon", "blueberries", "tahini"],
    "topping": ["granola", "chia seeds", "coconut flakes", "honey", "almond butter"],
    "nut": ["peanut", "almond", "cashew"],
    "relative": ["mom", "dad", "grandma", "aunt", "uncle", "sister", "roommate"],
    "kid": ["toddler", "son", "daughter", "nephew", "niece", "kid"],
    "num": ["2", "3", "4", "5", "6", "a dozen", "two", "three"],
    "price": ["19 cents", "29 cents", "$0.49", "59p", "$1", "39 cents"],
    "event": ["school", "church", "office", "charity", "PTA", "soccer club"],
    "cookie_kind": ["sugar cookies", "ginger snaps", "shortbread", "thumbprint cookies",
                    "peanut butter cookies", "double chocolate cookies", "crinkle cookies"],
    "treat": ["snickerdoodles", "shortbread", "macarons", "biscotti", "ginger snaps",
              "amaretti", "alfajores", "gingerbread men", "florentines", "linzer hearts"],
    "bake_batch": ["blueberry muffins", "brownies", "cinnamon rolls", "scones", "cupcakes",
                   "lemon bars", "dinner rolls", "pretzels"],
    "bake_loaf": ["sourdough", "focaccia", "a lemon cake", "an apple pie", "a pound cake",
                  "zucchini bread", "challah"],
    "dish": ["pizza", "tacos", "ramen", "burgers", "sushi", "pho", "dumplings", "fried chicken"],
    "food": ["pizza", "tacos", "ramen", "a burrito", "pad thai", "sushi", "a burger",
             "pho", "lasagna", "curry", "a bagel", "apple slices"],
    "weather": ["raining", "snowing", "freezing", "so humid", "30 degrees", "windy"],
    "show": ["Succession", "The Bear", "Severance", "Bluey", "Stranger Things", "The Office"],
    "artist": ["Taylor Swift", "Kendrick", "Beyoncé", "Radiohead", "Bad Bunny", "Olivia Rodrigo"],
    "q": ["1", "2", "3", "4"],
    "emo": ["😂", "🔥", "❤️", "🙌", "😭", "✨", "👀", "🙄", "💯", "😅"],
    "emo_b": ["🍌", "😋", "💛", "🤤", "🍌🍌", "🥞"],
    "emo_c": ["🍪", "😋", "🥛", "🤤", "🍪🍪", "❤️"],
}

SLANG_OPENERS = ["ngl", "lowkey", "omg", "honestly", "not gonna lie,", "okay but", "bruh",
                 "y'all", "PSA:", "update:", "lol", "ok so"]
SLANG_CLOSERS = ["fr", "lol", "no cap", "tbh", "lmao", "smh", "istg", "fr fr", "😂", "haha",
                 "just saying", "idk"]
OPENERS = ["this morning:", "after work:", "{day} update:", "quick one:", "story time:",
           "late night thought:", "day 3 of this:", "hear me out:"]
# Follow-up sentences.  "food" ones are shared by banana, cookie and other-food posts,
# so they carry no class signal by themselves.
FOLLOWUPS = {
    "food": ["Recipe in the comments.", "The kids loved it.", "Ten out of ten.",
             "Highly recommend.", "Not sponsored lol.", "My kitchen is a disaster now.",
             "Already planning the next one.", "Who wants some?", "Worth every calorie.",
             "Pics below.", "Saving some for {name}.", "Used my {relative}'s recipe.",
             "Perfect with {drink}.", "Trying to eat healthier this month, so this counts.",
             "Tag someone who needs this."],
    "general": ["Anyway, back to work.", "What a day.", "Thoughts?", "Can't complain.",
                "Long week.", "Weekend can't come soon enough.", "Happy Friday everyone!",
                "More tomorrow.", "That's all, goodnight.", "Send help.",
                "Tell me I'm not the only one.", "{name} agrees with me.",
                "Same time next week.", "Why is this my life."],
}

# Hashtags per class.  "keyword" tags contain the class word; "neutral" ones do not,
# so posts that avoid the word (implicit positives) stay free of it.
HASHTAGS = {
    "banana": {
        "keyword": ["#BananaBread", "#bananas", "#bananabread", "#BananaSmoothie", "#banana",
                    "#bananapancakes", "#bananasplit"],
        "neutral": ["#smoothie", "#healthyeating", "#fruit", "#potassium", "#breakfast",
                    "#foodie", "#yum", "#brunch", "#vegan"],
    },
    "cookie": {
        "keyword": ["#cookies", "#oatmealcookies", "#chocolatechipcookies", "#cookietime",
                    "#ChristmasCookies", "#sugarcookies", "#cookiedough"],
        "neutral": ["#baking", "#bakesale", "#foodie", "#yum", "#homebaker", "#dessert",
                    "#sweettooth", "#treatyoself"],
    },
    "other": {
        "keyword": [],
        "neutral": ["#mondaymood", "#tbt", "#life", "#weekend", "#mood", "#news",
                    "#blessed", "#fail", "#goals", "#random"],
    },
}

CHECKIN_PLACES = {"banana": ("market", "cafe", "diner"), "cookie": ("bakery", "cafe"),
                  "other": ("place", "diner", "cafe")}

TYPOS = {  # word -> misspellings that no longer contain the keyword
    "banana": ["bananna", "bannana", "banan", "nanner"],
    "bananas": ["banannas", "bannanas", "bananes", "nanners"],
    "cookie": ["cokie", "cookei", "cooky"],
    "cookies": ["cookeis", "cokies", "cookys", "coookies", "cookes"],
    "chocolate": ["choclate", "chocolat", "chocolote"],
    "the": ["teh"],
    "definitely": ["definately"],
    "tomorrow": ["tommorow"],
    "because": ["becuase", "bc"],
    "really": ["realy"],
    "delicious": ["delicous"],
}

# --------------------------------------------------------------------------
# Template families: CONCEPTS[label][kind] is a list of concepts; each concept
# has "seen" phrasings (all splits) and "held" phrasings (test split only).
# --------------------------------------------------------------------------


def concept(name, seen, held, topic=None, weight=1.0):
    """A concept: phrasings for every split, phrasings for test only, its topic
    ("food" or "general"; default: food for banana/cookie/confuser posts) and its
    relative weight among the concepts of the same kind."""
    return {"name": name, "seen": seen, "held": held, "topic": topic, "weight": weight}


BANANA_KEYWORD = [
    concept("short", [  # how people really post it: a dish, a compound hashtag
        "banana waffles",
        "banana bread time",
        "{day} baking #bananabread",
        "#bananabread for breakfast",
        "#bananapancakes {emo_b}",
        "{day} #bananasplit",
        "#bananasmoothie",
        "#bananasplit for dessert",
        "frozen banana bites",
        "#BananaPancakes 🥞",
        "banana muffins, warm",
        "#bananaoatmeal",
        "chocolate banana shake",
    ], [  # the issue's own examples are test-only, so tests/test_default_model.py is fair
        "banana pancakes",
        "#bananabread",
        "#bananapudding",
        "banana oat bars for the week",
        "#bananamuffins fresh",
    ]),
    concept("bread", [
        "Baked banana bread this morning and the whole flat smells amazing",
        "the banana bread recipe from {name} is the best one I've tried. moist, not too sweet.",
        "my {relative} makes the best banana bread, no contest",
        "third loaf of banana bread this week, send help",
        "banana bread with {mixin} >>> plain banana bread",
        "Is it even a {day} without a slice of banana bread and {drink}?",
        "ok so I finally tried the banana bread recipe everyone keeps posting. three really "
        "spotty bananas, a handful of {mixin} and way too much butter. came out perfect and "
        "my {relative} already asked for the recipe",
    ], [
        "update on the great banana bread experiment: loaf number two had less sugar, more "
        "{mixin} and an extra banana. {name} says it is the best one yet and I am inclined "
        "to agree with her",
        "nothing beats a warm slice of banana loaf with butter on it",
        "the kitchen smells like banana bread and I am not sharing",
        "tried a vegan banana bread with {mixin} today. Honestly no difference.",
    ]),
    concept("smoothie", [
        "banana and {fruit} smoothie before the gym",
        "frozen bananas make the creamiest smoothies, trust me",
        "breakfast: peanut butter banana smoothie and {drink}",
        "made a banana smoothie bowl topped with {topping}",
    ], [
        "blended a banana with {fruit} and oats, breakfast sorted in two minutes",
        "post-workout shake: one banana, protein powder, {drink}. Simple.",
    ]),
    concept("pancakes", [
        "banana pancakes on a lazy {day} morning 🥞",
        "two ingredient banana pancakes: one banana, two eggs. that's it",
        "the banana walnut pancakes at {diner} are unreal",
        "flipping banana pancakes for the kids before school",
    ], [
        "stack of banana pancakes with maple syrup, best breakfast of the week",
        "made banana oat pancakes for {name} and she ate five",
    ]),
    concept("market", [
        "bananas are on sale at {market}, {price} a pound",
        "grabbed a bunch of bananas at {market} on the way home",
        "why are the bananas at {market} always green??",
        "went to {market} for milk and came back with milk, two bunches of bananas, a "
        "pineapple and no idea how that happened. at least the bananas were cheap",
        "Banana prices went up again. {price} each is wild",
    ], [
        "{market} had the nicest bananas today, bought two bunches",
        "note to self: buy bananas tomorrow, we're out again",
    ]),
    concept("snack", [
        "a banana and some {nut} butter is the perfect pre-run snack",
        "ate a banana on the bus and got judged lol",
        "my {kid} only eats bananas now. every meal. bananas.",
        "BANANAS!!! the best fruit and I will not be taking questions",
        "Bananas are underrated. cheap, filling, they come in their own wrapper.",
    ], [
        "halfway through the hike and this banana is the best thing I've ever eaten",
        "Banana with a spoon of {nut} butter, the office snack of champions",
    ]),
    concept("dessert", [
        "banana split after dinner, worth every bite",
        "made bananas foster for date night and set the pan on fire (on purpose)",
        "banana pudding with the wafers on top is elite southern dessert",
    ], [
        "caramelised banana on toast with a pinch of salt. try it.",
        "chocolate dipped frozen banana pops for the kids this afternoon",
    ]),
    concept("muffins", [
        "banana oat muffins for the week's breakfasts, freezer stocked",
        "banana muffins with a crumb top, recipe in bio",
        "baked banana chocolate chip muffins with {name} tonight",
    ], [
        "my banana muffins came out flat but they still taste incredible",
    ]),
    concept("question", [
        "how do you stop bananas going brown so fast?",
        "do you keep your bananas in the fridge or nah",
        "hot take: slightly green bananas are better than spotty ones",
    ], [
        "serious question, is a banana a good pre-workout snack or not",
        "why does one brown banana make all the others ripen overnight",
    ]),
    concept("baby", [
        "mashed banana is the first food {kid} actually liked",
        "baby-led weaning update: banana everywhere. on the floor. in her hair.",
    ], [
        "{name}'s first solid food was banana and the face she made was priceless",
    ]),
]

BANANA_IMPLICIT = [
    concept("short", [
        "🍌 milkshake",
        "🍌🥞",
        "nanner bread",
        "ripe ones, smoothie time",
        "#smoothiebowl 🍌",
        "🍌 and oats",
        "{fruit} + 🍌",
    ], [
        "🍌 smoothie",
        "sliced 🍌 on toast",
        "#nicecream 🍌",
    ]),
    concept("ripe", [
        "these are perfectly ripe and yellow, making a smoothie 😋",
        "finally ripe! the brown spots mean they're sweet 🍌",
        "bought them green on {day}, perfectly yellow by the weekend",
        "the overripe ones on the counter are begging to be mashed into a loaf",
    ], [
        "three spotty yellow ones on the counter, time to bake 🍌",
        "mine went from green to brown in a single day, how",
    ]),
    concept("emoji", [
        "🍌🍌🍌 breakfast of champions",
        "🍌 + {nut} butter = happiness",
        "post-run snack 🍌💪",
        "smoothie with 🍌 and {fruit}, perfect start",
        "{day} mood: 🍌 on toast",
    ], [
        "oats, honey and sliced 🍌 for breakfast again",
        "pancakes with 🍌 on top 😋🥞",
    ]),
    concept("peel", [
        "peeled one from the bottom like monkeys do and it's a game changer",
        "a whole bunch for {price}?? the fruit aisle at {market} is wild today",
        "potassium check: had two with breakfast",
        "the kids fight over who gets the last yellow one in the fruit bowl",
    ], [
        "slicing yellow fruit onto my cereal like a proper grown up 🍌",
        "packed one in my gym bag and it got squashed, classic",
    ]),
    concept("nanas", [
        "nanners on sale at {market}, stocked up",
        "the kids call them nanas and honestly same, nanas and yogurt for lunch",
    ], [
        "got a bunch of nanners for smoothies this week 🍌",
    ]),
]

COOKIE_KEYWORD = [
    concept("short", [
        "#oatmealcookies",
        "#gingercookies",
        "{day} baking #chocolatechipcookies",
        "#chocolatechipcookies for the office",
        "#oatmealcookies {emo_c}",
        "{day} #sugarcookies",
        "cookie time",
        "#cookiedough",
        "#sugarcookies 🎄",
        "fresh cookies",
        "#doublechocolatecookies",
        "warm cookies, cold {drink}",
    ], [
        "#chocolatechipcookies",
        "#shortbreadcookies",
        "cookie swap tonight",
        "#peanutbuttercookies",
    ]),
    concept("chocolate_chip", [
        "chocolate chip cookies fresh out of the oven",
        "brown butter chocolate chip cookies hit different",
        "warm chocolate chip cookie and cold milk. perfect {day}.",
        "made a double batch of chocolate chip cookies and ate half already",
        "spent the whole afternoon testing chocolate chip cookie recipes. brown butter wins, "
        "chilled dough wins, flaky salt on top wins. my neighbours got the losers and "
        "nobody complained",
    ], [
        "the secret to these chocolate chip cookies is resting the dough for a day, using "
        "two kinds of chocolate and pulling them out while the middles still look underdone",
        "soft-baked chocolate chunk cookies, gooey in the middle, no regrets",
        "the chocolate chip cookie recipe on the back of the bag is still undefeated",
    ]),
    concept("bake_sale", [
        "baked {num} dozen cookies for the {event} bake sale",
        "cookie decorating with the kids today, icing everywhere",
        "sold out of cookies at the {event} bake sale in an hour!",
    ], [
        "volunteered to bring cookies to the {event} fundraiser, now baking at midnight",
    ]),
    concept("oatmeal", [
        "oatmeal raisin cookies are criminally underrated #oatmealcookies",
        "oatmeal cookies with {mixin}, the perfect afternoon snack",
        "my {relative}'s oatmeal cookie recipe never fails",
    ], [
        "chewy oat and raisin cookies with {drink}, best combo",
    ]),
    concept("shop", [
        "the cookies at {bakery} are the size of my face",
        "picked up a box of cookies from {bakery} for the office",
        "{bakery} has a new cookie flavour every week and I've tried them all",
    ], [
        "stopped at {bakery} for their famous cookies, still warm",
    ]),
    concept("holiday", [
        "Christmas cookie swap this weekend, I'm bringing {cookie_kind}",
        "sugar cookies cut into stars and trees, sprinkles everywhere",
    ], [
        "holiday baking day: {cookie_kind} and decorated sugar cookies",
    ]),
    concept("dough", [
        "eating raw cookie dough straight from the bowl, no regrets",
        "cookie dough ice cream is the superior flavor",
    ], [
        "chill your cookie dough overnight, the cookies come out so much better",
    ]),
    concept("girl_scout", [
        "Girl Scout cookies are back!! bought {num} boxes from {name}'s daughter",
        "Girl Scout cookie season is the best season",
    ], [
        "ordered {num} boxes of Girl Scout cookies, don't judge me",
    ]),
    concept("cravings", [
        "I need cookies. right now.",
        "Cookies for dinner? adulting is great",
        "this cookie's texture is perfect: crispy edges, soft middle",
        "COOKIES!!! someone left a whole tin of cookies in the break room",
    ], [
        "fresh cookies and {drink} on a rainy afternoon, nothing better",
        "one cookie turned into six, the usual",
    ]),
    concept("banana_cookie", [  # dominant topic: the cookie
        "banana oatmeal cookies for the kids' lunchboxes, no added sugar",
        "tried banana chocolate chip cookies, soft and cakey, really good",
    ], [
        "healthy breakfast cookies with mashed banana and oats, recipe below",
    ], weight=0.3),
]

COOKIE_IMPLICIT = [
    concept("short", [
        "baked {num} dozen for the bake sale",
        "made a batch for the {event} bake sale",
        "baking a batch for the bake sale tonight",
        "batch number two for the bake sale",
        "a batch for the bake sale 🍪",
        "#gingersnaps",
        "just baked a batch 🍪",
        "baked a fresh batch for {name}",
        "baked another batch, gone already",
        "fresh batch out of the oven 🍪",
        "#bakesale 🍪",
        "{num} dozen snickerdoodles done",
        "#shortbread",
        "#macarons",
    ], [
        "baked two batches for the bake sale tomorrow",
        "a tray of snickerdoodles for the fundraiser",
        "#snickerdoodles",
    ], weight=2.0),
    concept("varieties", [
        "just pulled a tray of snickerdoodles from the oven",
        "snickerdoodles and shortbread for the {event} party",
        "{treat} with {drink}, a perfect afternoon",
        "my {relative} sent a tin of homemade {treat}",
        "every December my {relative} and I spend a whole day baking {treat}, ginger snaps "
        "and jam thumbprints for the neighbours. the kitchen is a disaster but it is the "
        "best day of the year",
    ], [
        "two trays of {treat} cooling on the rack, the house smells amazing",
        "homemade {treat} are so much better than store bought",
    ]),
    concept("emoji", [
        "🍪 and milk before bed",
        "{emo_c} fresh batch, come and get them",
        "treat yourself {day}: 🍪🍪🍪",
    ], [
        "warm 🍪 and {drink}, the only self care I need",
    ]),
    concept("batch", [
        "baked a batch for the bake sale, chocolate chips in every bite",
        "dough is chilling, oven's preheating, {num} dozen coming up",
        "scooped the dough onto the baking sheet, 12 minutes at 180",
    ], [
        "first batch of chocolate chip ones burnt, second batch perfect",
        "rolled the dough into balls and rolled them in cinnamon sugar",
    ]),
    concept("macarons", [
        "macarons from {bakery}, the pistachio ones 😍",
        "finally nailed the macaron feet on my third try",
    ], [
        "pastel macarons lined up in the box, almost too pretty to eat",
    ]),
    concept("brands", [
        "double stuf Oreos dunked in milk is a whole mood",
        "Thin Mints straight from the freezer",
        "Samoas > Thin Mints and I'll die on this hill",
    ], [
        "twisted the Oreo, licked the cream, dunked the rest. the only way",
    ]),
]

OTHER_HARD_BANANA = [
    concept("short", [
        "went bananas",
        "the crowd went bananas",
        "Banana Republic haul",
        "my {species} Banana",
        "Banana Boat sunscreen",
        "#bananarepublic",
    ], [
        "going bananas today",
        "Banana Republic outlet",
    ]),
    concept("idiom_bananas", [
        "this party went bananas 🎉",
        "my boss is going bananas over the Q{q} numbers",
        "the crowd went absolutely bananas when {team} scored",
        "the kids are going bananas, it's been raining all week",
    ], [
        "the stadium went totally bananas after that last-minute goal",
        "my phone is going bananas with notifications today",
    ]),
    concept("banana_republic_politics", [
        "this government is turning the country into a banana republic",
        "elections postponed AGAIN. banana republic behaviour.",
    ], [
        "courts ignored, press muzzled, welcome to the banana republic",
    ]),
    concept("top_banana", [
        "{name} is top banana at the office now, promoted last week",
        "tired of playing second banana to {name} in every meeting",
    ], [
        "new manager wants everyone to know he's the top banana",
    ]),
    concept("pets", [
        "our {species} {banana_pet} knocked over the vase again",
        "came home to find {banana_pet} the {species} asleep on my laptop, the sofa cushions "
        "on the floor and the plant pot tipped over. I love this animal but I need a break",
        "my {species} {banana_pet} is sleeping in the laundry basket",
        "took {banana_pet} the {species} to the vet today, all good",
    ], [
        "{banana_pet} our {species} learned to open the back door",
    ]),
    concept("characters", [
        "Bananas in Pyjamas theme song stuck in my head",
        "the Minions yelling BANANA is my whole personality",
        "the kids watched Minions again. BANANAAA 🍌",
    ], [
        "anyone else remember Bananas in Pyjamas? B1 and B2 were iconic",
    ]),
    concept("games", [
        "got hit by a banana peel on the last lap of Rainbow Road #MarioKart",
        "whoever invented the banana item in Mario Kart owes me an apology",
    ], [
        "dropped a banana behind me in Mario Kart and {name} spun out, friendship over",
    ]),
    concept("brands", [
        "Banana Republic has a sale on chinos, grabbed two pairs",
        "reapply the Banana Boat sunscreen every two hours people",
        "got a Banana Republic blazer for the interview, feeling sharp",
    ], [
        "returned the Banana Republic sweater, wrong size again",
    ]),
    concept("streams_places", [
        "@{banana_user} stream tonight at 9, don't miss it",
        "holiday at Banana Island, the beach is unreal",
        "Banana Ball game tonight! the Savannah Bananas are a circus in the best way",
    ], [
        "watching @{banana_user} speedrun again, absolute legend",
        "the Savannah Bananas trick plays are better than most actual baseball",
    ]),
    concept("memes_music", [
        "banana for scale. yes the fish was that big",
        "Banana Pancakes by Jack Johnson came on shuffle and now I'm on holiday mentally",
        "painted my car banana yellow and the neighbours hate it",
    ], [
        "restored a vintage bike with a banana seat, rides like a dream",
        "the duct-taped banana artwork sold for millions again, art is a joke",
    ]),
]

OTHER_HARD_COOKIE = [
    concept("short", [
        "accept cookies?",
        "cookie banner again",
        "clear your cookies",
        "cleared my cache and cookies",
        "my {species} Cookie",
        "Cookie Monster forever",
        "#cookieclicker",
    ], [
        "reject all cookies",
        "cookie settings popup",
    ]),
    concept("idioms", [
        "that's the way the cookie crumbles",
        "she's one tough cookie, back at work a week after surgery",
        "smart cookie, that {name}, figured it out in five minutes",
        "caught with his hand in the cookie jar, the senator resigns",
    ], [
        "oh well, that's how the cookie crumbles I guess",
        "my grandma is one tough cookie, 92 and still driving",
    ]),
    concept("cookie_cutter", [
        "another cookie-cutter housing development going up by the park",
        "a cookie-cutter approach won't fix the schools",
    ], [
        "every new cafe in {city} has the same cookie-cutter look",
    ]),
    concept("browser", [
        "accept all cookies? absolutely not",
        "clear your cookies and cache and try again",
        "the GDPR cookie banner covers half the screen on my phone",
        "every website: we value your privacy. also: 400 cookie partners",
        "tried to read one news article and had to click through a cookie banner, a "
        "newsletter popup, a paywall notice and an app download prompt. I give up, "
        "going back to the radio",
    ], [
        "rejected all the cookies and the site still won't load",
        "why does every news site ask about cookies twice",
    ]),
    concept("tech", [
        "third-party cookie tracking is finally dying",
        "session cookie expired mid-checkout, lost my whole cart",
    ], [
        "debugging all day: the auth cookie wasn't set with SameSite=None",
        "Chrome delayed killing third-party cookies AGAIN",
    ]),
    concept("pets", [
        "my {species} {cookie_pet} knocked everything off the desk",
        "{cookie_pet} the {species} turned 10 today 🎂",
        "walked {cookie_pet} in the rain, now the whole dog smells",
    ], [
        "{cookie_pet} our {species} stole a sock and ran under the bed",
    ]),
    concept("characters", [
        "Cookie Monster is my spirit animal",
        "rewatching Empire, Cookie Lyon is iconic",
    ], [
        "Cookie Monster on Sesame Street is still the funniest character",
    ]),
    concept("games", [
        "Cookie Clicker has consumed my entire weekend",
        "new Cookie Run Kingdom event, pulling for the new character",
    ], [
        "I have a billion grandmas in Cookie Clicker and no social life",
    ]),
    concept("people", [
        "@{cookie_user} going live at 8, tune in",
        "happy birthday to my bestie Cookie, love you!!",
    ], [
        "my nan still calls me cookie and I'm 34",
    ]),
]

OTHER_CONFUSER = [
    concept("short", [
        "biscuits and gravy",
        "fresh muffins",
        "#sourdough",
        "plantain chips",
        "#brownies",
        "{bake_batch} for the bake sale",
    ], [
        "#blueberrymuffins",
        "baked a batch of brownies",
    ]),
    concept("biscuits_gravy", [
        "biscuits and gravy at {diner}, southern breakfast done right",
        "homemade buttermilk biscuits with sausage gravy this morning",
    ], [
        "nothing beats biscuits and gravy after a long night shift",
    ]),
    concept("other_baking", [
        "baked a batch of {bake_batch} for the {event} bake sale",
        "{bake_loaf} fresh out of the oven",
        "first time making {bake_loaf} and the dough would not rise",
    ], [
        "two trays of {bake_batch} cooling on the counter, the house smells amazing",
    ]),
    concept("other_fruit", [
        "these {other_fruit} are perfectly ripe for once",
        "peeled an orange in one go, today is a good day",
        "{other_fruit} are on sale at {market}, stocked up",
        "mango smoothie 🥭 with a bit of lime",
    ], [
        "grabbed a bag of ripe {other_fruit} at {market}, smoothie time",
    ]),
    concept("plantain", [
        "fried plantains with rice and beans, comfort food",
        "tostones at {diner} were perfect",
    ], [
        "sweet plantain chips are my new addiction",
    ]),
    concept("nana", [
        "visiting nana this weekend, she's making her lasagna",
        "nana's 90th birthday party today!!",
    ], [
        "nana called to ask how to use her new phone again",
    ], topic="general"),
    concept("desserts", [
        "birthday cake for {name}, three layers of chocolate",
        "cupcakes for the office, vanilla with sprinkles",
        "ice cream on a {day} night, no shame",
    ], [
        "lemon tart from {bakery}, tangy and perfect",
    ]),
]

OTHER_PLAIN = [
    concept("short", [
        "#mondaymood",
        "coffee time",
        "long day",
        "#tbt",
        "{team} tonight",
    ], [
        "#fridayfeeling",
        "nap time",
    ]),
    concept("weather", [
        "it's {weather} again in {city}, when is summer coming",
        "forgot my umbrella. obviously it's {weather}.",
        "weather app said sunny. it is {weather}. classic {city}.",
    ], [
        "woke up and it's {weather} outside, staying in bed",
    ]),
    concept("sports", [
        "{team} lost again, I can't do this every week",
        "three hours in the cold watching {team} play the worst football I have seen all "
        "season, the bus home broke down, and I still bought tickets for next week. "
        "this is a sickness",
        "what a game! {team} in the final seconds",
        "season tickets for {team} renewed, let's go",
    ], [
        "that referee should never work a {team} game again",
    ]),
    concept("work", [
        "third meeting that could have been an email",
        "my manager scheduled a meeting to plan the meeting about the quarterly planning "
        "meeting and I genuinely can't tell if it is a joke anymore. {day} is off to a "
        "great start",
        "{day} standup ran for an hour. an hour.",
        "finally shipped the release, going home",
    ], [
        "my inbox has 400 unread emails and I'm choosing peace",
    ]),
    concept("politics", [
        "the debate last night was a mess from start to finish",
        "go vote today, polls close at 8",
        "the new budget is a joke, my rent went up again",
    ], [
        "city council voted on the bike lanes, finally some progress",
    ]),
    concept("music", [
        "{artist} tickets sold out in four minutes, I'm devastated",
        "new {artist} album on repeat all day",
        "saw {artist} live last night and I'm still not over it",
    ], [
        "the {artist} concert was worth every penny",
    ]),
    concept("food", [
        "{food} for lunch again, no regrets",
        "best {dish} in {city} is at {diner}, fight me",
        "coffee number three and it's not even noon",
    ], [
        "ordered {food} and it came cold, one star",
    ], topic="food"),
    concept("pets", [
        "my {species} {pet} learned to open the fridge",
        "took {pet} to the dog park, came home covered in mud",
        "{pet} the {species} is judging me from the sofa",
    ], [
        "{pet} ate my headphones, this is why we can't have nice things",
    ]),
    concept("tv", [
        "just finished {show}, what do I watch now",
        "the {show} finale was insane",
        "binged the whole season of {show} in one night",
    ], [
        "no spoilers please, still catching up on {show}",
    ]),
    concept("commute", [
        "train delayed 40 minutes, love that for me",
        "traffic on the highway is a parking lot today",
        "cycled to work for the first time, legs are dead",
    ], [
        "missed the bus by ten seconds, the driver saw me",
    ]),
    concept("fitness", [
        "leg day done, stairs are now my enemy",
        "ran my first 10k this morning!!",
        "new personal best on deadlift today",
    ], [
        "five am gym crew checking in, who else is up",
    ]),
    concept("travel", [
        "landing in {city} tomorrow, any food tips?",
        "flight cancelled, stuck at the airport overnight",
    ], [
        "passport renewed, {city} here I come",
    ]),
]

CONCEPTS = {
    "banana": {"keyword": BANANA_KEYWORD, "implicit": BANANA_IMPLICIT},
    "cookie": {"keyword": COOKIE_KEYWORD, "implicit": COOKIE_IMPLICIT},
    "other": {"hard_banana": OTHER_HARD_BANANA, "hard_cookie": OTHER_HARD_COOKIE,
              "confuser": OTHER_CONFUSER, "plain": OTHER_PLAIN},
}

# --------------------------------------------------------------------------
# Building one post
# --------------------------------------------------------------------------

SLOT = re.compile(r"\{(\w+)\}")


def side_of(split: str) -> int:
    """Index into the (train, test) filler halves: val shares train's fillers."""
    return 1 if split == "test" else 0


def pick_filler(rng: Random, slot: str, split: str) -> str:
    values = FILLERS[slot]
    if isinstance(values, tuple):
        values = values[side_of(split)]
    return rng.choice(values)


def fill(template: str, rng: Random, split: str) -> str:
    return SLOT.sub(lambda m: pick_filler(rng, m.group(1), split), template)


def make_url(rng: Random, split: str) -> str:
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code = "".join(rng.choice(alphabet) for _ in range(rng.randint(6, 10)))
    return pick_filler(rng, "url_host", split) + code


def pick_template(rng: Random, label: str, kind: str, split: str) -> tuple[str, bool, str]:
    """Return (template, held, topic) for a post of this class and kind."""
    concepts = CONCEPTS[label][kind]
    chosen = rng.choices(concepts, weights=[c["weight"] for c in concepts])[0]
    use_held = split == "test" and chosen["held"] and rng.random() < HELD_SHARE_IN_TEST
    pool = chosen["held"] if use_held else chosen["seen"]
    topic = chosen["topic"] or ("food" if label != "other" or kind == "confuser" else "general")
    return rng.choice(pool), bool(use_held), topic


def add_sentence(text: str, sentence: str) -> str:
    """Append a sentence, closing the previous one with a full stop if needed."""
    if text and text[-1].isalnum():
        text += "."
    return f"{text} {sentence}"


def add_typo(rng: Random, text: str, keyword_only: bool) -> str:
    """Misspell one word from TYPOS (keyword_only: only banana/cookie/chocolate)."""
    words = ["banana", "bananas", "cookie", "cookies", "chocolate"]
    if not keyword_only:
        words = list(TYPOS)
    pattern = re.compile(r"\b(" + "|".join(sorted(words, key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    matches = list(pattern.finditer(text))
    if not matches:
        return text
    match = rng.choice(matches)
    original = match.group(0)
    typo = rng.choice(TYPOS[original.lower()])
    if original.isupper():
        typo = typo.upper()
    elif original[0].isupper():
        typo = typo[0].upper() + typo[1:]
    return text[:match.start()] + typo + text[match.end():]


def hashtags(rng: Random, label: str, allow_keyword: bool) -> str:
    tags = HASHTAGS[label]["neutral"] + (HASHTAGS[label]["keyword"] if allow_keyword else [])
    return " ".join(rng.sample(tags, rng.choice([1, 1, 2, 3])))


def checkin(rng: Random, label: str, split: str) -> str:
    place = pick_filler(rng, rng.choice(CHECKIN_PLACES[label]), split)
    form = rng.choice(["@ {p}", "— at {p}", "(@ {p} in {c})", "📍 {p}"])
    return form.format(p=place, c=pick_filler(rng, "city", split))


def has_keyword(text: str, label: str) -> bool:
    return label in text.lower()


def decorate(rng: Random, text: str, label: str, topic: str, split: str) -> str:
    """Dress a filled template up as a social-media post."""
    keyword_free = label != "other" and not has_keyword(text, label)
    if label != "other" and not keyword_free and rng.random() < 0.10:
        text = add_typo(rng, text, keyword_only=True)
        keyword_free = not has_keyword(text, label)
    elif rng.random() < 0.05:
        text = add_typo(rng, text, keyword_only=False)
    roll = rng.random()
    if roll < 0.15:
        text = f"{rng.choice(SLANG_OPENERS)} {text}"
    elif roll < 0.22:
        text = f"{fill(rng.choice(OPENERS), rng, split)} {text}"
    for chance in (0.30, 0.12):
        if rng.random() < chance:
            text = add_sentence(text, fill(rng.choice(FOLLOWUPS[topic]), rng, split))
    if rng.random() < 0.10:
        text = f"{text} {rng.choice(SLANG_CLOSERS)}"
    if rng.random() < 0.06:
        text = text.upper()
    emoji_slot = {"banana": "emo_b", "cookie": "emo_c"}.get(label, "emo")
    if rng.random() < 0.30:
        text = f"{text} {pick_filler(rng, emoji_slot, split)}"
    if rng.random() < 0.25:
        text = f"{text} {hashtags(rng, label, allow_keyword=not keyword_free)}"
    if rng.random() < 0.08:
        text = f"{text} {checkin(rng, label, split)}"
    if rng.random() < 0.15:
        text = f"{text} {make_url(rng, split)}"
    roll = rng.random()
    if roll < 0.06:
        text = f"RT @{pick_filler(rng, 'user', split)}: {text}"
    elif roll < 0.16:
        text = f"@{pick_filler(rng, 'user', split)} {text}"
    return text


def make_post(rng: Random, label: str, kind: str, split: str) -> dict:
    template, held, topic = pick_template(rng, label, kind, split)
    base = fill(template, rng, split)
    text = " ".join(decorate(rng, base, label, topic, split).split())
    return {"text": text, "label": label, "kind": kind, "held": held, "base": base}


# --------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------


def quotas(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Integer counts proportional to shares, summing exactly to total."""
    counts = {key: int(total * share) for key, share in shares.items()}
    first = next(iter(counts))
    counts[first] += total - sum(counts.values())
    return counts


def dedup_key(text: str) -> str:
    return " ".join(text.casefold().split())


def make_split(rng: Random, split: str, size: int, seen: set[str]) -> list[dict]:
    """Generate `size` posts, none of whose texts (case-folded) is in `seen`."""
    posts = []
    for label, n_label in quotas(size, CLASS_SHARE).items():
        for kind, n_kind in quotas(n_label, KIND_SHARE[label]).items():
            made, attempts = 0, 0
            while made < n_kind:
                attempts += 1
                if attempts > 200 * n_kind + 1000:
                    sys.exit(f"cannot make {n_kind} unique {label}/{kind} posts for {split}")
                post = make_post(rng, label, kind, split)
                key = dedup_key(post["text"])
                if key in seen or not MIN_WORDS <= len(post["text"].split()) <= MAX_WORDS:
                    continue
                seen.add(key)
                posts.append(post)
                made += 1
    rng.shuffle(posts)
    for number, post in enumerate(posts, start=1):
        post["id"] = f"bc-{split}-{number:06d}"
    return posts


def write_jsonl(path: Path, posts: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for post in posts:
            record = {"id": post["id"], "text": post["text"], "label": post["label"]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------
# Summary: counts, hard negatives and the naive keyword baseline
# --------------------------------------------------------------------------


def keyword_rule(text: str) -> str:
    lowered = text.lower()
    if "banana" in lowered:
        return "banana"
    if "cookie" in lowered:
        return "cookie"
    return "other"


def per_class_scores(gold: list[str], predicted: list[str]) -> dict[str, tuple[float, float, float]]:
    scores = {}
    for label in CLASSES:
        tp = sum(g == p == label for g, p in zip(gold, predicted))
        n_pred = sum(p == label for p in predicted)
        n_gold = sum(g == label for g in gold)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[label] = (precision, recall, f1)
    return scores


def summarize(split: str, posts: list[dict]) -> None:
    counts = Counter(post["label"] for post in posts)
    other = [p["text"].lower() for p in posts if p["label"] == "other"]
    hard_banana = sum("banana" in t for t in other)
    hard_cookie = sum("cookie" in t for t in other)
    implicit = {label: sum(p["label"] == label and label not in p["text"].lower() for p in posts)
                for label in ("banana", "cookie")}
    held = sum(post["held"] for post in posts)
    texts = [post["text"] for post in posts]
    lengths = [len(t.split()) for t in texts]
    print(f"[{split}] {len(posts)} posts  " + "  ".join(f"{c}={counts[c]}" for c in CLASSES),
          file=sys.stderr)
    print(f"  hard negatives (other containing 'banana' / 'cookie'): {hard_banana} / {hard_cookie}",
          file=sys.stderr)
    print(f"  positives without their keyword: banana {implicit['banana']}, "
          f"cookie {implicit['cookie']}", file=sys.stderr)
    print(f"  words per post: min {min(lengths)}, mean {sum(lengths) / len(lengths):.1f}, "
          f"max {max(lengths)};  test-only phrasings: {held}", file=sys.stderr)
    style = {
        "emoji": sum(any(ord(ch) > 0x2000 for ch in t) for t in texts),
        "#hashtag": sum("#" in t for t in texts),
        "@mention": sum("@" in t for t in texts),
        "RT": sum(t.startswith("RT @") for t in texts),
        "link": sum(bool(re.search(r"(t\.co|\.ly|tinyurl\.com)/", t)) for t in texts),
        "ALL CAPS": sum(t == t.upper() for t in texts),  # whole post upper-case
    }
    print("  posts with " + ", ".join(f"{k} {v}" for k, v in style.items()), file=sys.stderr)
    gold = [post["label"] for post in posts]
    predicted = [keyword_rule(post["text"]) for post in posts]
    scores = per_class_scores(gold, predicted)
    accuracy = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
    macro = sum(f1 for _, _, f1 in scores.values()) / len(scores)
    print(f"  keyword rule: accuracy {accuracy:.3f}, macro-F1 {macro:.3f}", file=sys.stderr)
    for label, (precision, recall, f1) in scores.items():
        print(f"    {label:7s} P {precision:.3f}  R {recall:.3f}  F1 {f1:.3f}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output directory (default: corpus/banana-cookie)")
    args = parser.parse_args(argv)

    seen: set[str] = set()
    splits = {}
    # test first, so that no train/val post can ever duplicate a test post
    for index, split in enumerate(("test", "val", "train")):
        rng = Random(args.seed * 10 + index)
        splits[split] = make_split(rng, split, SPLIT_SIZES[split], seen)
        write_jsonl(args.out / f"{split}.jsonl", splits[split])
    for split in ("train", "val", "test"):
        summarize(split, splits[split])
    train_bases = {dedup_key(post["base"]) for post in splits["train"]}
    shared = sum(dedup_key(post["base"]) in train_bases for post in splits["test"])
    print(f"test posts whose undecorated sentence also occurs in train: {shared}"
          f" / {len(splits['test'])}", file=sys.stderr)
    all_keys = [dedup_key(post["text"]) for posts in splits.values() for post in posts]
    print(f"duplicate texts (case-folded) within or across splits: "
          f"{len(all_keys) - len(set(all_keys))}", file=sys.stderr)
    print(f"wrote {args.out}/{{train,val,test}}.jsonl", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
