using System.Text.Json;
using Microsoft.AspNetCore.Http;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Gateway.Api;

/// <summary>
/// Reads a limiter API body by hand rather than through model binding, so that every mistake is a
/// 400 naming the field (<see cref="ApiInputException"/>), whatever the host's environment.
/// </summary>
internal static class ApiInput
{
    /// <summary>The longest wait one call may ask for (a client renews for longer waits).</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromHours(1);

    /// <summary>The JSON object of the body; an empty body reads as <c>{}</c>.</summary>
    public static async Task<JsonElement> ReadObjectAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        if (buffer.Length == 0)
        {
            return EmptyObject;
        }

        try
        {
            using var document = JsonDocument.Parse(buffer.ToArray());
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ApiInputException("body", "The body must be a JSON object.");
            }

            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ApiInputException("body", $"The body is not valid JSON: {ex.Message}");
        }
    }

    private static JsonElement EmptyObject { get; } = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>A whole number field from <paramref name="min"/> to <paramref name="max"/>; null when absent or null.</summary>
    public static long? Long(JsonElement body, string field, long min, long max)
    {
        if (!body.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number) || number < min || number > max)
        {
            throw new ApiInputException(field, $"'{field}' must be a whole number from {min} to {max}.");
        }

        return number;
    }

    /// <summary>A string field; null when absent or null.</summary>
    public static string? String(JsonElement body, string field)
    {
        if (!body.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
        {
            throw new ApiInputException(field, $"'{field}' must be a non-empty string.");
        }

        return value.GetString()!;
    }

    /// <summary>A cost object (<c>{"requests":1,"tokens":1200}</c>) in field <paramref name="field"/>; null when absent.</summary>
    public static LimitCost? Cost(JsonElement body, string field)
    {
        if (!body.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new ApiInputException(field, $"'{field}' must be an object of limit names and amounts, e.g. {{\"requests\":1,\"tokens\":1200}}.");
        }

        var parts = new List<(string, long)>();
        foreach (var part in value.EnumerateObject())
        {
            var name = part.Name.Trim().ToLowerInvariant();
            if (!name.Equals(LimitSpec.Requests, StringComparison.Ordinal) && RateLimitingOptionsValidator.LimitNameProblem(name) is { } problem)
            {
                throw new ApiInputException($"{field}.{part.Name}", $"'{field}.{part.Name}': limit name {problem}");
            }

            if (part.Value.ValueKind != JsonValueKind.Number || !part.Value.TryGetInt64(out var amount) || amount < 0 || amount > LimitBounds.MaxPoints)
            {
                throw new ApiInputException($"{field}.{part.Name}", $"'{field}.{part.Name}' must be a whole number from 0 to {LimitBounds.MaxPoints}.");
            }

            if (parts.Exists(p => p.Item1 == name))
            {
                throw new ApiInputException($"{field}.{part.Name}", $"'{field}.{part.Name}' is given twice.");
            }

            parts.Add((name, amount));
        }

        if (parts.Count == 0)
        {
            throw new ApiInputException(field, $"'{field}' must name at least one limit.");
        }

        return LimitCost.Of([.. parts]);
    }

    /// <summary><c>interactive</c>, <c>normal</c> or <c>batch</c> (any case); null when absent.</summary>
    public static WaitPriority? Priority(JsonElement body, string field = "priority")
    {
        var text = String(body, field);
        if (text is null)
        {
            return null;
        }

        if (!Enum.TryParse<WaitPriority>(text, ignoreCase: true, out var priority) || !Enum.IsDefined(priority) || int.TryParse(text, out _))
        {
            throw new ApiInputException(field, $"'{field}' must be interactive, normal or batch.");
        }

        return priority;
    }

    /// <summary><c>maxWaitMs</c>, from 0 to <see cref="MaxWait"/>; null when absent.</summary>
    public static TimeSpan? Wait(JsonElement body, string field = "maxWaitMs") =>
        Long(body, field, 0, (long)MaxWait.TotalMilliseconds) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;

    /// <summary>Throws naming the route value when <paramref name="provider"/> or <paramref name="key"/> is not a safe name.</summary>
    public static void Names(string provider, string key)
    {
        if (LimiterKey.ProviderProblem(provider) is { } providerProblem)
        {
            throw new ApiInputException("provider", providerProblem);
        }

        if (LimiterKey.KeyProblem(key) is { } keyProblem)
        {
            throw new ApiInputException("key", keyProblem);
        }
    }
}
