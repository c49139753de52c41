#pragma once
// Small RAII helpers around the HDF5 C API, shared by the io/ writers and
// readers (internal to the library).
#include <hdf5.h>

#include <cstdio>
#include <string>
#include <utility>

namespace satalab::detail {

// Silences HDF5's automatic error-stack printing for the lifetime of the guard
// and restores whatever handler was installed before, so callers see only our
// one-line InvalidArgument messages.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    if (H5Eget_auto2(H5E_DEFAULT, &old_func_, &old_data_) < 0) {
      old_func_ = nullptr;
      old_data_ = nullptr;
    }
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, old_func_, old_data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t old_func_ = nullptr;
  void* old_data_ = nullptr;
};

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  bool valid() const { return id_ >= 0; }
  hid_t get() const { return id_; }
  // Closes now and reports whether the close succeeded (for files, where the
  // close is what flushes the data).
  bool close() {
    if (!valid()) return true;
    const herr_t status = closer_(id_);
    id_ = H5I_INVALID_HID;
    return status >= 0;
  }
  void reset() { (void)close(); }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

inline Handle file_handle(hid_t id) { return Handle(id, H5Fclose); }
inline Handle dataset_handle(hid_t id) { return Handle(id, H5Dclose); }
inline Handle space_handle(hid_t id) { return Handle(id, H5Sclose); }
inline Handle type_handle(hid_t id) { return Handle(id, H5Tclose); }
inline Handle attribute_handle(hid_t id) { return Handle(id, H5Aclose); }

inline Handle group_handle(hid_t id) { return Handle(id, H5Gclose); }
inline Handle plist_handle(hid_t id) { return Handle(id, H5Pclose); }

// Removes a temporary file when the scope is left while still armed (the
// write failed); set armed = false once the file has been renamed into place.
struct RemoveOnFailure {
  const std::string& name;
  bool armed = true;
  ~RemoveOnFailure() {
    if (armed) std::remove(name.c_str());
  }
};

}  // namespace satalab::detail
