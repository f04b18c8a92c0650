using System.Globalization;
using System.Text;
using System.Text.Json;

namespace OrleansLimiter.Tracing;

/// <summary>
/// The trace's line format: one JSON object per call, fields in camel case, times in ISO 8601 with
/// their offset, durations in seconds. Unknown fields are ignored, so a later writer may add some.
/// </summary>
public static class CallTraceFormat
{
    /// <summary>Writes <paramref name="record"/> as one line, without its line break.</summary>
    public static string Write(CallTraceRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("time", record.Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            json.WriteString("tenant", record.Tenant);
            json.WriteString("provider", record.Provider);
            if (record.Model is not null)
            {
                json.WriteString("model", record.Model);
            }

            json.WriteString("priority", record.Priority.ToString().ToLowerInvariant());
            Tokens(json, "estimate", record.Estimate);
            if (record.Usage is { } usage)
            {
                Tokens(json, "usage", usage);
            }

            json.WriteNumber("duration", Math.Round(record.Duration.TotalSeconds, 3));
            if (record.MaxWait is { } maxWait)
            {
                json.WriteNumber("maxWait", Math.Round(maxWait.TotalSeconds, 3));
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Reads one line; a line that is not a call says why, naming its field (the caller adds the line
    /// number).
    /// </summary>
    /// <exception cref="FormatException">The line is not a call of this format.</exception>
    public static CallTraceRecord Read(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"not a JSON object ({ex.Message})", ex);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("not a JSON object");
            }

            var timeText = Text(root, "time", required: true)!;
            if (!DateTimeOffset.TryParse(timeText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
            {
                throw new FormatException($"field 'time' must be an ISO 8601 time (was '{timeText}')");
            }

            var tenant = Text(root, "tenant", required: true)!;
            var provider = Text(root, "provider", required: true)!;
            var model = Text(root, "model", required: false);
            var priority = WaitPriority.Normal;
            if (Text(root, "priority", required: false) is { } priorityText
                && (!Enum.TryParse(priorityText, ignoreCase: true, out priority) || !Enum.IsDefined(priority) || int.TryParse(priorityText, out _)))
            {
                throw new FormatException($"field 'priority' must be interactive, normal or batch (was '{priorityText}')");
            }

            var estimate = Tokens(root, "estimate") ?? throw new FormatException("field 'estimate' is missing");
            var usage = Tokens(root, "usage");
            var duration = Seconds(root, "duration") ?? TimeSpan.Zero;
            var maxWait = Seconds(root, "maxWait");
            return new CallTraceRecord(time, tenant, provider, model, priority, estimate, usage, duration, maxWait);
        }
    }

    private static void Tokens(Utf8JsonWriter json, string name, TokenCount tokens)
    {
        json.WriteStartObject(name);
        json.WriteNumber("input", tokens.Input);
        json.WriteNumber("output", tokens.Output);
        json.WriteEndObject();
    }

    private static string? Text(JsonElement root, string name, bool required)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return required ? throw new FormatException($"field '{name}' is missing") : null;
        }

        if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
        {
            throw new FormatException($"field '{name}' must be a non-empty string");
        }

        return value.GetString();
    }

    private static TokenCount? Tokens(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"field '{name}' must be an object with 'input' and 'output' token counts");
        }

        return new TokenCount(Count(value, name, "input"), Count(value, name, "output"));
    }

    private static long Count(JsonElement tokens, string parent, string name)
    {
        if (!tokens.TryGetProperty(name, out var value))
        {
            return 0;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var count) && count >= 0
            ? count
            : throw new FormatException($"field '{parent}.{name}' must be a whole number of tokens, 0 or more (was {value.GetRawText()})");
    }

    private static TimeSpan? Seconds(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var seconds) && double.IsFinite(seconds) && seconds is >= 0 and <= 86_400
            ? TimeSpan.FromSeconds(seconds)
            : throw new FormatException($"field '{name}' must be a number of seconds from 0 to 86400 (was {value.GetRawText()})");
    }
}
