# ROS 2 PyPI wheels (ros-*-msgs) export rosidl_generator_py targets whose include
# directories point at the wheel build machine's interpreter (/opt/python/cp311-cp311/...).
# CMake refuses to generate with non-existent include paths, so replace those entries
# with this interpreter's Python and NumPy headers. A no-op on a regular ROS install.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)

function(antispoof_fix_wheel_python_includes)
  get_directory_property(_imported IMPORTED_TARGETS)
  foreach(_target IN LISTS _imported)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs OR NOT _dirs MATCHES "^/opt/python/|;/opt/python/")
      continue()
    endif()
    set(_fixed "")
    foreach(_dir IN LISTS _dirs)
      if(_dir MATCHES "^/opt/python/.*numpy")
        list(APPEND _fixed ${Python3_NumPy_INCLUDE_DIRS})
      elseif(_dir MATCHES "^/opt/python/")
        list(APPEND _fixed ${Python3_INCLUDE_DIRS})
      else()
        list(APPEND _fixed ${_dir})
      endif()
    endforeach()
    list(REMOVE_DUPLICATES _fixed)
    set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
    message(STATUS "antispoof_ros: fixed wheel include paths of ${_target}")
  endforeach()
endfunction()
