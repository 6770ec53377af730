"""The worked example's fine-tuning recipe in PyTorch, to compare Kiln's figures with: full
fine-tuning or PEFT LoRA (rank R, alpha 2R, on c_attn, c_proj and c_fc) of a Kiln checkpoint on a
task file, 100 steps of batch 16 at a peak rate LR (linear warm-up over 10 steps, then a cosine to
a tenth), the answer followed by a newline as Kiln trains it, prompt tokens masked (-100); prints
the answer loss on a seeded tenth held out. Not a parity test (the batches differ from Kiln's):
it says whether a recipe learns. Needs torch, transformers, peft, tokenizers.

    python3 scripts/finetune_pytorch.py runs/example/pre tasks/place/train.jsonl 1e-2 lora [R]
    python3 scripts/finetune_pytorch.py runs/example/pre tasks/place/train.jsonl 3e-3 full
"""
import json, math, random, sys, torch
from transformers import GPT2LMHeadModel
from tokenizers import Tokenizer
from peft import LoraConfig, get_peft_model
torch.manual_seed(0); random.seed(0)
ck, task, lr, lora = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "lora"
tok = Tokenizer.from_file(f"{ck}/tokenizer.json")
m = GPT2LMHeadModel.from_pretrained(ck)
rank = int(sys.argv[5]) if len(sys.argv) > 5 else 8
if lora:
    targets = ["c_attn", "c_proj", "c_fc"]  # c_proj matches attn.c_proj and mlp.c_proj, as Kiln's
    m = get_peft_model(m, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, fan_in_fan_out=True, lora_dropout=0.0))
ex = [json.loads(l) for l in open(task)]
random.shuffle(ex); val, tr = ex[: len(ex) // 10], ex[len(ex) // 10 :]
def row(e):
    p = tok.encode(e["prompt"]).ids; c = tok.encode(e["completion"] + "\n").ids
    return p + c, [-100]*len(p) + c
def batch(es):
    rows = [row(e) for e in es]; T = max(len(r[0]) for r in rows)
    x = torch.tensor([r[0] + [0]*(T-len(r[0])) for r in rows]); y = torch.tensor([r[1] + [-100]*(T-len(r[1])) for r in rows])
    return x, y
params = [p for p in m.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
steps, warm = 100, 10
for s in range(steps):
    f = (s+1)/warm if s < warm else 0.1 + 0.9*0.5*(1+math.cos(math.pi*(s-warm)/(steps-warm)))
    for g in opt.param_groups: g["lr"] = lr*f
    x, y = batch(random.choices(tr, k=16))
    loss = m(input_ids=x, labels=y).loss
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    if s % 20 == 0 or s == steps-1: print(s, round(loss.item(), 4))
with torch.no_grad():
    tot = n = 0
    for i in range(0, len(val), 16):
        x, y = batch(val[i:i+16]); k = (y[:,1:] != -100).sum().item()
        tot += m(input_ids=x, labels=y).loss.item()*k; n += k
print("val", tot/n)
