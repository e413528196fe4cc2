"""Classifiers fitted on frozen embeddings, as TS2Vec's tasks/_eval_protocols.py: the SVM
protocol, linear (standardised features, one-vs-rest logistic regression) and 1-NN (standardised).

`evaluate` returns test accuracy, macro-F1 and AUPRC, plus a validation accuracy from stratified
k-fold cross-validation on the training embeddings: the number a sweep may optimise, since it
never touches the test set. AUPRC follows TS2Vec's tasks/classification.py: average precision of the
one-hot test labels against the classifier's scores (the SVM's decision_function, linear's predict_proba;
1-NN has no decision function, so its predict_proba), which sklearn reads as the positive class's AP for
two classes and the macro mean over classes otherwise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Protocol = Literal["svm", "linear", "knn"]

C_GRID = [1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1000, 1e4, np.inf]
SMALL_DATA_C = np.inf  # TS2Vec: no grid search on small sets, a hard-margin SVM
MAX_GRID_SAMPLES = 10_000


def make_classifier(protocol: Protocol, features: np.ndarray, labels: np.ndarray):
    """An unfitted sklearn estimator for the protocol, chosen as the reference does for this data size."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if protocol == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1))
    if protocol == "linear":  # TS2Vec's LogisticRegression(multi_class='ovr'), which sklearn 1.7 removed
        return make_pipeline(
            StandardScaler(), OneVsRestClassifier(LogisticRegression(random_state=0, max_iter=1_000_000))
        )
    n_classes = len(np.unique(labels))
    if len(labels) // n_classes < 5 or len(labels) < 50:
        return SVC(C=SMALL_DATA_C, gamma="scale")
    return GridSearchCV(SVC(C=1.0, gamma="scale"), {"C": C_GRID}, cv=5, n_jobs=1)


def _fit(protocol: Protocol, features: np.ndarray, labels: np.ndarray):
    if len(labels) > MAX_GRID_SAMPLES and protocol == "svm":
        from sklearn.model_selection import train_test_split

        features, _, labels, _ = train_test_split(
            features, labels, train_size=MAX_GRID_SAMPLES, random_state=0, stratify=labels
        )
    classifier = make_classifier(protocol, features, labels)
    return classifier.fit(features, labels)


def cross_validated_accuracy(protocol: Protocol, features: np.ndarray, labels: np.ndarray, folds: int = 5) -> float:
    """Mean accuracy over stratified folds of the training set (NaN if a class has < 2 samples)."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(folds, int(np.bincount(labels).min()))
    if folds < 2:
        return float("nan")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    scores = [
        _fit(protocol, features[train], labels[train]).score(features[held], labels[held])
        for train, held in splitter.split(features, labels)
    ]
    return float(np.mean(scores))


def evaluate(
    protocol: Protocol, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> dict[str, float]:
    """{"val/acc", "test/acc", "test/f1_macro", "test/auprc"} for embeddings (N, C) and int labels."""
    from sklearn.metrics import average_precision_score, f1_score
    from sklearn.preprocessing import label_binarize

    classifier = _fit(protocol, train_x, train_y)
    predicted = classifier.predict(test_x)
    scores = classifier.decision_function(test_x) if protocol == "svm" else classifier.predict_proba(test_x)
    truth = label_binarize(test_y, classes=classifier.classes_)  # one column per class the classifier knows
    if truth.shape[1] == 1:  # two classes: the positive class's column and its score only
        truth, scores = truth[:, 0], scores if scores.ndim == 1 else scores[:, 1]
    return {
        "val/acc": cross_validated_accuracy(protocol, train_x, train_y),
        "test/acc": float((predicted == test_y).mean()),
        "test/f1_macro": float(f1_score(test_y, predicted, average="macro")),
        "test/auprc": float(average_precision_score(truth, scores)),
    }
