using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace OrleansLimiter.Hosting;

/// <summary>The <c>Console</c> section: how long the console's sampler goes on after the last look.</summary>
public sealed class LimiterConsoleOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Console";

    /// <summary>The setting of <see cref="IdleAfter"/>, a number of seconds.</summary>
    public const string IdleAfterSetting = SectionName + ":IdleAfter";

    /// <summary>Fewest seconds <see cref="IdleAfter"/> may be: one sample interval.</summary>
    public const double MinIdleAfterSeconds = 1;

    /// <summary>Most seconds <see cref="IdleAfter"/> may be (one day).</summary>
    public const double MaxIdleAfterSeconds = 86_400;

    /// <summary>
    /// The default of <see cref="IdleAfter"/>: two minutes, twice Prometheus' default scrape interval,
    /// so that a Prometheus scraping every minute or more often keeps the sampled series fresh, while a
    /// console closed stops costing the cluster within two minutes.
    /// </summary>
    public static readonly TimeSpan DefaultIdleAfter = TimeSpan.FromMinutes(2);

    /// <summary>
    /// How long the sampler goes on reading every key once a second after the last look (the console's
    /// state asked for, or <c>/metrics</c> scraped); <c>Console:IdleAfter</c>, in seconds, from
    /// <see cref="MinIdleAfterSeconds"/> to <see cref="MaxIdleAfterSeconds"/>.
    /// </summary>
    public TimeSpan IdleAfter { get; set; } = DefaultIdleAfter;

    /// <summary>Settings that could not be read, each named; reported by the validator at start-up.</summary>
    internal List<string> BindingProblems { get; } = [];

    /// <summary>
    /// Reads the section by hand, as <c>RateLimiting</c> is read: the configuration binder would stop
    /// on an unreadable number with a message that does not name the setting.
    /// </summary>
    internal static void Bind(LimiterConsoleOptions options, IConfigurationSection section)
    {
        foreach (var setting in section.GetChildren())
        {
            if (!setting.Key.Equals("IdleAfter", StringComparison.OrdinalIgnoreCase))
            {
                options.BindingProblems.Add($"{SectionName}:{setting.Key} is not a setting; use IdleAfter.");
                continue;
            }

            if (double.TryParse(setting.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) &&
                seconds is >= MinIdleAfterSeconds and <= MaxIdleAfterSeconds)
            {
                options.IdleAfter = TimeSpan.FromSeconds(seconds);
            }
            else
            {
                options.BindingProblems.Add(Range(setting.Value));
            }
        }
    }

    internal static string Range(string? was) => string.Create(CultureInfo.InvariantCulture,
        $"{IdleAfterSetting} must be a number of seconds from {MinIdleAfterSeconds} to {MaxIdleAfterSeconds} (was '{was}').");
}
