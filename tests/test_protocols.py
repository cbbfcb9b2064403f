"""Evaluation protocols and label modes on hand-made vote rows."""

import numpy as np
import pytest

from training.data import protocol_labels, protocol_mask, training_targets

#                 neu hap sur sad ang dis fea con unk NF
ROWS = np.array([[6, 1, 1, 1, 1, 0, 0, 0, 0, 0],   # 0 clear neutral
                 [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],   # 1 tie neutral/happiness: no majority
                 [1, 5, 1, 1, 1, 1, 0, 0, 0, 0],   # 2 5 of 10 raw, 5 of 5 once the 1s go: happiness
                 [0, 0, 0, 0, 0, 0, 0, 0, 3, 7],   # 3 not a face
                 [3, 0, 0, 0, 0, 0, 0, 0, 4, 3],   # 4 top raw count is unknown
                 [0, 0, 0, 2, 0, 0, 0, 3, 3, 2],   # 5 contempt ties unknown; 3 of 10 is no majority
                 [2, 2, 2, 0, 0, 0, 2, 2, 0, 0]])  # 6 five-way tie


def test_ferplus_majority_protocol():
    mask, labels = protocol_labels(ROWS, "ferplus_majority")
    assert mask.tolist() == [True, False, True, False, False, False, False]
    assert labels.tolist() == [0, 1]


def test_all_majority_protocol_ties_go_to_the_first_column():
    mask, labels = protocol_labels(ROWS, "all_majority")
    assert mask.tolist() == [True, True, True, False, False, True, True]
    assert labels.tolist() == [0, 0, 1, 7, 0]


def test_soft_targets_drop_single_votes_and_sum_to_one():
    mask, targets = training_targets(ROWS, "soft")
    assert mask.tolist() == [True, True, True, False, False, True, True]
    np.testing.assert_allclose(targets.sum(1), 1)
    np.testing.assert_allclose(targets[0], [1, 0, 0, 0, 0, 0, 0, 0])   # the 1-votes are outliers
    np.testing.assert_allclose(targets[1], [0.5, 0.5, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(targets[3], [0, 0, 0, 0.4, 0, 0, 0, 0.6])


def test_majority_targets_are_one_hot():
    mask, targets = training_targets(ROWS, "majority")
    assert mask.sum() == 2
    np.testing.assert_array_equal(targets.argmax(1), [0, 1])
    np.testing.assert_array_equal(targets.sum(1), [1, 1])


def test_unknown_protocol_is_an_error():
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_mask(ROWS, "best_of_three")
