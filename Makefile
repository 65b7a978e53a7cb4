# hamfeat: the user's path is `make features && make train`; `make test` runs the test suite.
# Every target installs what it needs into ./.venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out
JOBS   ?= 0
MODEL  ?= ensemble
# FEATURES: the table `make train` fits on (make features-classical: no masks needed).
FEATURES ?= $(OUT)/features_auto.parquet
# DATA: a HAM10000 folder. Empty means: $$HAMFEAT_DATA, then ./data/HAM10000, then ../shared/data/ham10000.
DATA   ?=
DATA_ARG := $(if $(DATA),--data "$(DATA)",)

# CXR_DATA: a ChestX-ray14 folder. Empty means: $$HAMFEAT_CXR14_DATA, then ./data/nih-cxr14,
# then ../shared/data/nih-cxr14-sample.
CXR_DATA ?=
CXR_DATA_ARG := $(if $(CXR_DATA),--data "$(CXR_DATA)",)

.PHONY: all venv features features-given features-classical gap-dev gap-dev-members features-cc train cv cv-repeated score test lint bench clean \
	features-cxr14 cv-cxr14 train-cxr14

all: features train

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,plots,dask,bench]"
	touch $(STAMP)

venv: $(STAMP)

# The learned segmenter (lesion-grouped fold models + a full model; hamfeat/segmenter.py), fitted
# on the data set's own masks. `make features` uses it for every automatic mask.
$(OUT)/segmenter.skops: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m hamfeat train-segmenter $(DATA_ARG) -o $@ --jobs $(JOBS)

# The table `make train` needs: automatic masks for every image, the condition under which
# new images are scored (they never have masks), from the learned segmenter (out-of-fold masks
# for the training images: each image is segmented by a fold model that never saw its lesion).
features: $(OUT)/segmenter.skops
	$(PY) -m hamfeat features $(DATA_ARG) -o $(OUT)/features_auto.parquet --masks auto \
	    --segmenter $(OUT)/segmenter.skops --jobs $(JOBS)

# The data set's own (Tschandl) masks: the upper bound the CV reports give beside the
# automatic-mask numbers (`make cv`); not needed to train or score.
features-given: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m hamfeat features $(DATA_ARG) -o $(OUT)/features.parquet --jobs $(JOBS)

# The classical automatic masks (Otsu, hamfeat/segment.py; no training), the default before the
# learned segmenter: for the comparison in benchmarks/reports/gap_dev.md.
features-classical: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m hamfeat features $(DATA_ARG) -o $(OUT)/features_auto_classical.parquet --masks auto \
	    --jobs $(JOBS)

$(OUT)/features_auto.parquet:
	$(MAKE) features
$(OUT)/features.parquet:
	$(MAKE) features-given
$(OUT)/features_auto_classical.parquet:
	$(MAKE) features-classical

# The development-split comparison of the classical and learned automatic masks (issue #17).
gap-dev: $(OUT)/features_auto.parquet $(OUT)/features_auto_classical.parquet $(OUT)/features.parquet
	$(PY) benchmarks/bench_gap_dev.py \
	    --tables classical=$(OUT)/features_auto_classical.parquet,learned=$(OUT)/features_auto.parquet \
	    --train-extra learned_given=learned+$(OUT)/features.parquet --extra-members mlp \
	    --members hgb,mlp --combos classical:hgb+classical:mlp+learned:hgb+learned:mlp \
	    --ship learned:hgb+learned:mlp \
	    --cache $(OUT)/oof --report benchmarks/reports/gap_dev.md

# Other members and settings for the shipped ensemble on the learned table (issue #17/#21).
gap-dev-members: $(OUT)/features_auto.parquet
	$(PY) benchmarks/bench_gap_dev.py --tables learned=$(OUT)/features_auto.parquet \
	    --members hgb,mlp,lr,hgbw,mlp512 \
	    --variant "hgbw=hgb:class_weight='balanced',mlp512=mlp:hidden_layer_sizes=(512,)" \
	    --combos learned:hgb+learned:mlp+learned:lr,learned:hgbw+learned:mlp+learned:mlp512 \
	    --ship learned:hgb+learned:mlp --cache $(OUT)/oof \
	    --report benchmarks/reports/gap_dev_members.md

# For the colour-constancy ablation of `make cv` (colour constancy is off by default: it hurt).
features-cc: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m hamfeat features $(DATA_ARG) -o $(OUT)/features_cc.parquet --color-constancy --jobs $(JOBS)
	$(PY) -m hamfeat features $(DATA_ARG) -o $(OUT)/features_auto_cc.parquet --masks auto \
	    --color-constancy --jobs $(JOBS)

# The model `hamfeat score` uses: trained on automatic masks, as it will be used.
train: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m hamfeat train --features $(FEATURES) -o $(OUT)/model.skops --model $(MODEL)

# The numbers a user gets first (automatic masks: new images never have masks), then the
# data set's own masks as the upper bound, with the ablations and the automatic-mask comparison.
cv: $(STAMP) $(OUT)/features.parquet $(OUT)/features_auto.parquet
	$(PY) -m hamfeat cv --features $(OUT)/features_auto.parquet --no-ablations \
	    --report-dir benchmarks/reports/auto_masks
	$(PY) -m hamfeat cv --features $(OUT)/features.parquet --models knn,hgb,lr,mlp,ensemble \
	    --auto-features $(OUT)/features_auto.parquet \
	    $(if $(wildcard $(OUT)/features_cc.parquet),--cc-features $(OUT)/features_cc.parquet,) \
	    --report-dir benchmarks/reports
	if [ -f $(OUT)/features_cc.parquet ]; then $(PY) -m hamfeat cv \
	    --features $(OUT)/features_cc.parquet --no-ablations \
	    --models hgb,lr,mlp,ensemble --report-dir benchmarks/reports/color_constancy; fi
	if [ -f $(OUT)/features_auto_cc.parquet ]; then $(PY) -m hamfeat cv \
	    --features $(OUT)/features_auto_cc.parquet --no-ablations \
	    --models hgb,lr,mlp,ensemble --report-dir benchmarks/reports/color_constancy_auto; fi

# the default ensemble's CV repeated on two more lesion-grouped splits (seeds 1 and 2)
cv-repeated: $(STAMP) $(OUT)/features.parquet
	$(PY) -m hamfeat cv --features $(OUT)/features.parquet --no-ablations --seeds 1,2 \
	    --models hgb,lr,mlp,ensemble --report-dir benchmarks/reports/repeated

# NIH ChestX-ray14 (grayscale, multi-label, patient-grouped): see README "Chest X-rays".
features-cxr14: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m hamfeat features --dataset cxr14 $(CXR_DATA_ARG) -o $(OUT)/cxr14_features.parquet \
	    --jobs $(JOBS)

cv-cxr14: features-cxr14
	$(PY) -m hamfeat cv --dataset cxr14 --features $(OUT)/cxr14_features.parquet \
	    --report-dir benchmarks/reports/cxr14

train-cxr14: features-cxr14
	mkdir -p $(OUT)
	$(PY) -m hamfeat train --dataset cxr14 --features $(OUT)/cxr14_features.parquet \
	    -o $(OUT)/cxr14_model.skops

test: $(STAMP)
	$(PY) -m ruff check hamfeat tests benchmarks
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check hamfeat tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(PY) benchmarks/bench_features.py
	$(PY) benchmarks/bench_kernels.py 10
	$(PY) benchmarks/bench_full_run.py
	$(PY) benchmarks/bench_segment.py
	$(PY) benchmarks/bench_score.py
	$(PY) benchmarks/bench_jpeg_quality.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
