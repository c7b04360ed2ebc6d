// The Haar fallback (no ONNX face models) on real photographs from Debian's opencv-doc package, with the true face
// boxes marked by looking at the pictures: it must pick the real face (messi5.jpg: a small face next to a larger
// false positive on the shirt, which "largest box" picked), pick nothing in pictures without a face, and pick one
// of the faces when there are several. docs/face.md "Haar fallback" reports the figures. Skipped without
// opencv-doc (apt-get install opencv-doc) or opencv-data's cascades.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "emo/face.h"

namespace fs = std::filesystem;
using emo::face::FaceAnalyzer;
using emo::face::FaceOptions;

namespace {

const fs::path kDoc = "/usr/share/doc/opencv-doc";

struct Photo {
  const char* file;   // under kDoc
  const char* kind;   // "face", "faces" (several, any is right), "none", "missed" (a face the cascade never finds)
  std::vector<cv::Rect> truth;  // true face boxes (x, y, w, h), marked by eye
};

// Marked by viewing each picture with the candidate boxes drawn (see docs/face.md).
const std::vector<Photo>& photos() {
  static const std::vector<Photo> p = {
      {"examples/data/messi5.jpg", "face", {{225, 92, 42, 42}}},  // small face; a 78 px false box on hair/shirt
      {"opencv4/html/roi.jpg", "face", {{184, 75, 33, 33}}},     // tiny face (33 px)
      {"opencv4/html/227943776_1.jpg", "face", {{112, 97, 181, 181}}},
      {"opencv4/html/230501201_1.jpg", "face", {{115, 215, 371, 371}}},
      {"opencv4/html/face_swapped.jpg", "face", {{85, 66, 139, 139}}},
      {"opencv4/html/faceDetection.png", "face", {{214, 203, 187, 187}}},
      {"opencv4/html/blurred.png", "face", {{213, 203, 187, 187}}},
      {"opencv4/html/resimg.jpg", "face", {{221, 174, 132, 132}}},
      {"opencv4/html/05.jpg", "face", {{109, 107, 306, 306}}},
      {"opencv4/html/12.jpg", "face", {{115, 27, 326, 326}}},
      {"opencv4/html/ab.jpg", "face", {{122, 103, 190, 190}}},
      {"opencv4/html/ab-1.jpg", "face", {{54, 120, 276, 276}}},
      {"opencv4/html/Cascade_Classifier_Tutorial_Result_Haar.jpg", "face", {{132, 147, 265, 265}}},
      {"opencv4/html/julia_facedetect_sample.jpg", "face", {{165, 150, 137, 137}}},  // a painting
      {"opencv4/html/superpixels_demo.png", "face", {{227, 113, 78, 78}}},
      {"opencv4/html/GCC_CMake_Example_Tutorial.jpg", "face", {{86, 101, 66, 66}}},
      {"opencv4/html/example.jpg", "faces", {{26, 158, 333, 333}, {391, 140, 374, 374}, {783, 154, 357, 357}}},
      {"opencv4/html/Basic_Linear_Transform_Tutorial_Result_big.jpg", "faces", {{86, 91, 66, 66}, {283, 90, 67, 67}}},
      {"opencv4/html/Adding_Trackbars_Tutorial_Result_1.jpg", "faces", {{86, 110, 66, 66}, {279, 121, 71, 71}}},
      {"opencv4/html/messipyr.jpg", "missed", {}},
      {"opencv4/html/Cascade_Classifier_Tutorial_Result_LBP.jpg", "missed", {}},
      {"opencv4/html/clahe_1.jpg", "none", {}},  // a plaster head, shelves
      {"opencv4/html/clahe_2.jpg", "none", {}},
      {"opencv4/html/bin.jpeg", "none", {}},     // playing cards
      {"opencv4/html/realsense.jpg", "none", {}},  // cameras
      {"opencv4/html/calib_pattern.jpg", "none", {}},
      {"opencv4/html/11.jpg", "none", {}},       // forest
      {"examples/data/box_in_scene.png", "none", {}},
      {"opencv4/html/VideoDemo_thermal_park.jpg", "none", {}},
      {"opencv4/html/cat_det.jpg", "none", {}},  // a kitten (no human face)
      {"opencv4/html/newspaper.jpg", "none", {}},  // faces far below the detector's minimum size
      {"examples/data/baboon.jpg", "none", {}},
      {"examples/data/fruits.jpg", "none", {}},
      {"examples/data/starry_night.jpg", "none", {}},
      {"examples/data/building.jpg", "none", {}},
      {"examples/data/home.jpg", "none", {}},
      {"examples/data/HappyFish.jpg", "none", {}},
  };
  return p;
}

double iou(const cv::Rect& a, const cv::Rect& b) {
  const double in = (a & b).area();
  return in / (a.area() + b.area() - in);
}

cv::Rect rect_of(const emo::face::Detection& d) {
  return cv::Rect(cvRound(d.box[0]), cvRound(d.box[1]), cvRound(d.box[2] - d.box[0]), cvRound(d.box[3] - d.box[1]));
}

bool have_data() {
  return fs::exists(kDoc / "examples/data/messi5.jpg") &&
         fs::exists("/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml") &&
         fs::exists("/usr/share/opencv4/haarcascades/haarcascade_eye.xml");
}

}  // namespace

TEST(FaceHaarPick, MessiPicksTheSmallRealFaceNotTheLargerFalseBox) {
  if (!have_data()) GTEST_SKIP() << "needs Debian's opencv-doc and opencv-data";
  FaceOptions o;
  o.img_size = 64;
  FaceAnalyzer fa(o);
  auto a = fa.analyze_file((kDoc / "examples/data/messi5.jpg").string());
  ASSERT_EQ(a.detector, "haar");
  ASSERT_GE(a.faces.size(), 2u) << "the cascade's two candidates (face and false positive)";
  ASSERT_GE(a.picked, 0);
  EXPECT_GE(iou(rect_of(a.faces[a.picked]), {225, 92, 42, 42}), 0.5);
  // The square crop (generate's path for non-square photos) is centred on that face too.
  o.square_crop = true;
  FaceAnalyzer cropper(o);
  auto c = cropper.analyze_file((kDoc / "examples/data/messi5.jpg").string());
  const cv::Point centre(c.crop.rect.x + c.crop.rect.width / 2, c.crop.rect.y + c.crop.rect.height / 2);
  EXPECT_TRUE(cv::Rect(215, 82, 62, 62).contains(centre)) << c.crop.rect;
  EXPECT_GE(c.picked, 0) << "the face is found again inside the crop";
}

TEST(FaceHaarPick, PicksTheRightFaceOnTheOpencvDocPhotoSet) {
  if (!have_data()) GTEST_SKIP() << "needs Debian's opencv-doc and opencv-data";
  FaceOptions o;
  o.img_size = 64;
  FaceAnalyzer fa(o);
  int right = 0, wrong = 0, nothing_on_face = 0, total = 0;
  std::string report;
  for (const auto& ph : photos()) {
    const fs::path path = kDoc / ph.file;
    if (!fs::exists(path)) continue;
    ++total;
    auto a = fa.analyze_file(path.string());
    const std::string kind = ph.kind;
    bool ok;
    if (a.picked < 0) {
      ok = kind == "none";
      if (kind == "missed") ++nothing_on_face;
    } else {
      ok = false;
      for (const auto& t : ph.truth) ok = ok || iou(rect_of(a.faces[a.picked]), t) >= 0.4;
    }
    if (ok) ++right;
    else if (a.picked >= 0) ++wrong;
    report += std::string(ok ? "  ok " : a.picked >= 0 ? "  WRONG " : "  none ") + ph.file + " (" + kind + ", " +
              std::to_string(a.faces.size()) + " candidates, picked " + std::to_string(a.picked) + ")\n";
  }
  ASSERT_EQ(total, static_cast<int>(photos().size())) << "opencv-doc files missing";
  // docs/face.md: 35 of 37 right, 0 wrong picks; the 2 others are faces the cascade never proposes, where the
  // fallback now picks nothing instead of a false box ("largest box" scored 24 right, 13 wrong).
  EXPECT_EQ(wrong, 0) << report;
  EXPECT_GE(right, 35) << report;
  EXPECT_EQ(nothing_on_face, 2) << report;
}
