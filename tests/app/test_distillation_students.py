"""Distillation only offers students that make the model smaller, built for the data's kind."""

from __future__ import annotations

from apptest_support import app_test, assert_clean


def test_no_student_is_offered_when_none_is_smaller_than_the_baseline(lab):
    at = app_test("pages/2_compress.py")  # digits + the pretrained seed CNN (1 210 parameters)
    at.run()
    assert_clean(at)
    at.toggle(key="b_use_distill").set_value(True).run()
    assert_clean(at)
    assert not at.toggle(key="b_use_distill").value  # turned back off, with the reason
    assert any("No image model in the zoo is smaller than this baseline (1,210 parameters)" in i.value
               for i in at.info)


def test_students_are_smaller_than_the_teacher_and_native_to_the_data(lab):
    at = app_test("pages/2_compress.py", model_source="Model zoo", model_name="qat_cnn", baseline_mode="train")
    at.run()
    at.toggle(key="b_use_distill").set_value(True).run()
    assert_clean(at)
    assert at.toggle(key="b_use_distill").value
    student = at.selectbox(key="b_student")
    assert student.options[0].startswith("seed_cnn (1,210 parameters)")  # the smallest first, the default
    assert student.value == "seed_cnn"
    names = [o.split(" ")[0] for o in student.options]
    assert "lstm" not in names and "conv1d" not in names  # sequence models are not offered for images
    assert "qat_cnn" not in names  # not the teacher itself
