# cli.export_safe: `onestop export -o FILE` checks before it writes and
# replaces FILE only with a complete archive. Run with -DCLI=, -DDIR= (a
# scratch directory, emptied first), -DARCHIVE= (an archive of three cases,
# ids 1..3) and -DDEFS= (their definitions).
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
set(db ${DIR}/cases.db)

function(run expect_rc)
  execute_process(COMMAND ${CLI} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect_rc)
    message(FATAL_ERROR "onestop ${ARGN}: exit ${rc}, wanted ${expect_rc}\n${out}${err}")
  endif()
  set(out "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_match text regex what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${what}: does not match '${regex}':\n${text}")
  endif()
endfunction()

run(0 import --store sqlite:${db} -i ${ARCHIVE} ${DEFS})

# The store's own file, under its own name and another spelling, and the
# log SQLite keeps beside it: refused, the store left whole.
foreach(target ${db} ${DIR}/./cases.db ${db}-wal)
  run(1 export --store sqlite:${db} -o ${target})
  expect_match("${out}" "is (the database file of the store|.*-wal, a file SQLite keeps beside the store)" "export -o ${target}")
endforeach()
run(0 versions --store sqlite:${db})
run(0 export --store sqlite:${db} -o ${DIR}/backup.jsonl)
file(READ ${DIR}/backup.jsonl backup)
expect_match("${backup}" "^{\"cases\":3," "the backup")

# A missing case is found before anything is written: an existing archive
# is left as it was, and no partial archive is made.
run(1 export --store sqlite:${db} --case 999 -o ${DIR}/backup.jsonl)
expect_match("${out}" "not_found: export: no case 999" "export --case 999")
file(READ ${DIR}/backup.jsonl after)
if(NOT after STREQUAL backup)
  message(FATAL_ERROR "export --case 999 changed the existing archive")
endif()
run(1 export --store sqlite:${db} --case 1 --case 999 --case 2 -o ${DIR}/partial.jsonl)
if(EXISTS ${DIR}/partial.jsonl)
  message(FATAL_ERROR "a failed export left ${DIR}/partial.jsonl")
endif()

# A case asked for twice is written once.
run(0 export --store sqlite:${db} --case 3 --case 3 -o ${DIR}/twice.jsonl)
file(STRINGS ${DIR}/twice.jsonl lines)
list(LENGTH lines n)
list(GET lines 0 header)
if(NOT n EQUAL 2 OR NOT header MATCHES "\"cases\":1,")
  message(FATAL_ERROR "export --case 3 --case 3 wrote ${n} lines, header ${header}")
endif()

# A symbolic link, dangling or not, keeps pointing at the file it names,
# which the archive becomes.
file(CREATE_LINK ${DIR}/named.jsonl ${DIR}/link.jsonl SYMBOLIC)
run(0 export --store sqlite:${db} -o ${DIR}/link.jsonl)
if(NOT IS_SYMLINK ${DIR}/link.jsonl OR NOT EXISTS ${DIR}/named.jsonl)
  message(FATAL_ERROR "export -o through a dangling link replaced the link instead of making the file it names")
endif()
file(READ ${DIR}/named.jsonl named)
if(NOT named STREQUAL backup)
  message(FATAL_ERROR "export -o through a link wrote something else than the archive")
endif()

# No temporary file is left behind.
file(GLOB left ${DIR}/.*.jsonl.*)
if(left)
  message(FATAL_ERROR "temporary files left: ${left}")
endif()
