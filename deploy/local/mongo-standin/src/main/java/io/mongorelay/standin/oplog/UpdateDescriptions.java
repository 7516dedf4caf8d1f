package io.mongorelay.standin.oplog;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import de.bwaldvogel.mongo.bson.Document;

/**
 * Works out the {@code updateDescription} of an update event from the update operators and the
 * document before and after, following what a MongoDB 5.0+ server logs (the "$v: 2" oplog
 * delta): each operator path that changed is reported with its new value under its dotted path;
 * a path whose parents did not exist is reported at the shallowest parent created; $unset paths
 * and the source of a $rename are removed fields; elements appended to an existing array by $push
 * or $addToSet are reported one by one as {@code array.<index>}. Paths with positional operators
 * ($, $[], $[id]) are resolved by comparing the array they point into, element by element.
 */
final class UpdateDescriptions {

    /** Marks a path that does not exist (a field may well hold null). */
    private static final Object MISSING = new Object();

    private final Document updatedFields = new Document();
    private final List<String> removedFields = new ArrayList<>();
    private final List<Document> truncatedArrays = new ArrayList<>();

    private UpdateDescriptions() {
    }

    static Document describe(Document before, Document after, Document update) {
        UpdateDescriptions description = new UpdateDescriptions();
        for (Map.Entry<String, Object> operator : update.entrySet()) {
            if (operator.getValue() instanceof Document fields) {
                for (Map.Entry<String, Object> field : fields.entrySet()) {
                    description.add(operator.getKey(), field.getKey(), field.getValue(), before, after);
                }
            }
        }
        return new Document("updatedFields", description.updatedFields)
            .append("removedFields", description.removedFields)
            .append("truncatedArrays", description.truncatedArrays);
    }

    private void add(String operator, String path, Object argument, Document before, Document after) {
        String[] segments = path.split("\\.");
        int positional = firstPositional(segments);
        if (positional >= 0) {
            String arrayPath = String.join(".", List.of(segments).subList(0, positional));
            compare(arrayPath, get(before, arrayPath), get(after, arrayPath));
            return;
        }
        switch (operator) {
            case "$unset" -> removed(path, before, after);
            case "$rename" -> {
                removed(path, before, after);
                changed((String) argument, before, after);
            }
            case "$push", "$addToSet" -> appended(path, before, after);
            default -> changed(path, before, after);
        }
    }

    private void removed(String path, Document before, Document after) {
        if (get(before, path) != MISSING && get(after, path) == MISSING) {
            removedFields.add(path);
        }
    }

    private void changed(String path, Document before, Document after) {
        Object value = get(after, path);
        if (value == MISSING || Objects.equals(get(before, path), value)) {
            return;
        }
        String created = shallowestCreated(path, before);
        updatedFields.put(created, copy(get(after, created)));
    }

    private void appended(String path, Document before, Document after) {
        if (get(before, path) instanceof List<?> old && get(after, path) instanceof List<?> now
            && now.size() > old.size() && now.subList(0, old.size()).equals(old)) {
            for (int i = old.size(); i < now.size(); i++) {
                updatedFields.put(path + "." + i, copy(now.get(i)));
            }
        } else {
            changed(path, before, after);
        }
    }

    /** Reports the differences between two values at {@code path}, as finely as they go. */
    private void compare(String path, Object before, Object after) {
        if (before instanceof Document old && after instanceof Document now) {
            for (Map.Entry<String, Object> field : now.entrySet()) {
                String child = path + "." + field.getKey();
                if (!old.containsKey(field.getKey())) {
                    updatedFields.put(child, copy(field.getValue()));
                } else {
                    compare(child, old.get(field.getKey()), field.getValue());
                }
            }
            old.keySet().stream().filter(key -> !now.containsKey(key)).forEach(key -> removedFields.add(path + "." + key));
        } else if (before instanceof List<?> old && after instanceof List<?> now) {
            int common = Math.min(old.size(), now.size());
            for (int i = 0; i < common; i++) {
                compare(path + "." + i, old.get(i), now.get(i));
            }
            for (int i = common; i < now.size(); i++) {
                updatedFields.put(path + "." + i, copy(now.get(i)));
            }
            if (now.size() < old.size()) {
                truncatedArrays.add(new Document("field", path).append("newSize", now.size()));
            }
        } else if (!Objects.equals(before, after)) {
            if (after == MISSING) {
                removedFields.add(path);
            } else {
                updatedFields.put(path, copy(after));
            }
        }
    }

    private static int firstPositional(String[] segments) {
        for (int i = 0; i < segments.length; i++) {
            if (segments[i].startsWith("$")) {
                return i;
            }
        }
        return -1;
    }

    /** The shortest prefix of {@code path} that did not exist before, or the path itself. */
    private static String shallowestCreated(String path, Document before) {
        int dot = path.indexOf('.');
        while (dot >= 0) {
            String prefix = path.substring(0, dot);
            if (get(before, prefix) == MISSING) {
                return prefix;
            }
            dot = path.indexOf('.', dot + 1);
        }
        return path;
    }

    private static Object get(Object root, String path) {
        Object value = root;
        for (String segment : path.split("\\.")) {
            if (value instanceof Document document && document.containsKey(segment)) {
                value = document.get(segment);
            } else if (value instanceof List<?> list && isIndex(segment) && Integer.parseInt(segment) < list.size()) {
                value = list.get(Integer.parseInt(segment));
            } else {
                return MISSING;
            }
        }
        return value;
    }

    private static boolean isIndex(String segment) {
        return !segment.isEmpty() && segment.length() < 10 && segment.chars().allMatch(Character::isDigit);
    }

    /** A private copy: the collection keeps changing its documents after the event is recorded. */
    private static Object copy(Object value) {
        if (value instanceof Document document) {
            return document.cloneDeeply();
        } else if (value instanceof List<?> list) {
            List<Object> copy = new ArrayList<>(list.size());
            list.forEach(element -> copy.add(copy(element)));
            return copy;
        }
        return value;
    }
}
