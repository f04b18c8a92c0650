using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;
using OrleansLimiter.AI;
using OrleansLimiter.AI.Feedback;
using OrleansLimiter.Tracing;

namespace OrleansLimiter.Worker;

/// <summary>
/// The <c>chat</c> mode's services: the official OpenAI client over an <see cref="HttpClient"/> whose
/// handlers include <see cref="ProviderFeedbackHandler"/>, as an <see cref="IChatClient"/> with the
/// limiter middleware (unless <c>Worker:Limiter=off</c>), and the workload that calls it.
/// </summary>
internal static class ChatPipeline
{
    /// <summary>The named <see cref="HttpClient"/> the OpenAI client sends through.</summary>
    public const string HttpClientName = "chat-provider";

    /// <summary>Registers the chat workload for <paramref name="worker"/> (the <c>Worker</c> section as configured).</summary>
    public static IServiceCollection AddChatWorkload(this IServiceCollection services, WorkerOptions worker)
    {
        // With the limiter, every response's rate-limit headers (and a 429) reach the cluster's shared
        // count; without it they are only recorded. Either is a plain registration a host can replace.
        if (worker.LimiterOn && worker.ProviderFeedbackOn)
        {
            services.AddClusterProviderFeedback();
        }
        else
        {
            services.AddProviderFeedback();
        }

        services.AddHttpClient(HttpClientName)
            .AddHttpMessageHandler(sp => new ProviderFeedbackHandler(
                worker.Provider,
                sp.GetRequiredService<IProviderFeedbackSink>(),
                sp.GetService<TimeProvider>(),
                sp.GetRequiredService<ILogger<ProviderFeedbackHandler>>()));

        var chat = services.AddChatClient(CreateProviderClient);
        if (worker.LimiterOn)
        {
            // One writer for the process, disposed (and flushed) with the host.
            var trace = worker.TracePath is { Length: > 0 } path ? new CallTraceWriter(path, sampleRate: 1) : null;
            if (trace is not null)
            {
                services.AddSingleton(trace);
            }

            chat.UseOrleansLimiter(worker.Provider, o =>
            {
                o.Trace = trace;
                o.MaxWait = TimeSpan.FromSeconds(worker.MaxWait);

                // The simulator charges 4 per message at admission; OpenAI's format costs 3 per message
                // plus 3 per reply. 4 errs high for both, and the settle gives the difference back.
                o.TokensPerMessage = 4;
            });
        }

        services.AddHostedService<ChatWorkload>();
        return services;
    }

    private static IChatClient CreateProviderClient(IServiceProvider services)
    {
        var o = services.GetRequiredService<IOptions<WorkerOptions>>().Value;
        var http = services.GetRequiredService<IHttpClientFactory>().CreateClient(HttpClientName);
        var client = new OpenAIClient(new ApiKeyCredential(o.ApiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(o.Endpoint!),
            Transport = new HttpClientPipelineTransport(http),

            // The client retries 429s by itself by default; here every 429 must reach the caller, to be seen and counted.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
        return client.GetChatClient(o.Model).AsIChatClient();
    }
}
