/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke features`: the JSON document `runc features` prints, describing what
 * this build supports, plus stoke's own extensions under "annotations".
 */
#ifndef STOKE_SHIM_FEATURES_H
#define STOKE_SHIM_FEATURES_H

#include <json-c/json.h>

/*! shim_features_build() :
 *  Build the features document. *ret is owned by the caller (json_object_put()).
 * @return : 0 or -ENOMEM. */
int shim_features_build(json_object **ret);

#endif
